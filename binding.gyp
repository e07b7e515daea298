{
  "targets": [{
    "target_name": "udp_batch",
    "sources": ["native/udp_batch.c"],
    "defines": ["NAPI_VERSION=8"],
    "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"],
    "cflags!": ["-Wno-unused-parameter"]
  }]
}
