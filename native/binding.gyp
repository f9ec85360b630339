{
  "targets": [
    {
      "target_name": "gyoza_kernels",
      "sources": ["src/addon.c", "src/kernels-scalar.c"],
      "libraries": ["-lm"],
      "cflags": ["-O3", "-std=c11", "-ffp-contract=off", "-fno-fast-math"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-std=c11", "-ffp-contract=off", "-fno-fast-math"] },
      "conditions": [
        ["target_arch=='x64'", {
          "defines": ["GYOZA_HAVE_AVX2"],
          "dependencies": ["gyoza_kernels_avx2"]
        }]
      ]
    },
    {
      "target_name": "gyoza_kernels_avx2",
      "type": "static_library",
      "sources": ["src/kernels-avx2.c"],
      "cflags": ["-O3", "-std=c11", "-mavx2", "-mf16c", "-ffp-contract=off", "-fno-fast-math", "-fPIC"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O3", "-std=c11", "-mavx2", "-mf16c", "-ffp-contract=off", "-fno-fast-math"]
      },
      "conditions": [
        ["target_arch!='x64'", { "type": "none", "sources": [] }]
      ]
    }
  ]
}
