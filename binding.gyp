{
  "targets": [
    {
      "target_name": "natt",
      "sources": [
        "native/addon.cc",
        "native/cipher.cc",
        "native/encap_socket.cc",
        "native/message_socket.cc",
        "native/peer_cred.cc",
        "native/poll_handle.cc",
        "native/probe.cc",
        "native/tun.cc",
        "native/udp_socket.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden", "-fstack-protector-strong"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-Wall"] }
    }
  ]
}
