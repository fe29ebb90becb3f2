{
  "targets": [
    {
      "target_name": "daxpin",
      "sources": [
        "native/addon.cc",
        "native/mapping.cc",
        "native/pins.cc",
        "native/layout_ops.cc",
        "native/observe.cc",
        "native/mount.cc",
        "native/blocking.cc",
        "native/nbd.cc",
        "native/aio.cc",
        "native/rdma.cc",
        "native/freeze.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}
