{
  "targets": [
    {
      "target_name": "netns",
      "sources": ["native/netns.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
