// Addon entry point: registers the native facilities (placeholder until the foundation lands).
#include <napi.h>

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

NODE_API_MODULE(natt, Init)
