#pragma once
// Gunzip and Unbrotli for the preview tests: bodies are checked by decoding them with the
// reference libraries, not with the code that made them.

#include <brotli/decode.h>
#include <zlib.h>

#include <optional>
#include <string>
#include <string_view>

namespace qai::sandbox::testing {

// Gunzip: a gzip stream's content; nullopt when it is not one (or has bytes after its end).
inline std::optional<std::string> Gunzip(std::string_view in) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return std::nullopt;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    char buf[16384];
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - z.avail_out);
  }
  const bool ok = rc == Z_STREAM_END && z.avail_in == 0;
  inflateEnd(&z);
  if (!ok) return std::nullopt;
  return out;
}

// Unbrotli: a brotli stream's content; nullopt when it is not one.
inline std::optional<std::string> Unbrotli(std::string_view in) {
  BrotliDecoderState* state = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  size_t available_in = in.size();
  const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
  std::string out;
  BrotliDecoderResult rc = BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT;
  while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) {
    uint8_t buf[16384];
    size_t available_out = sizeof(buf);
    uint8_t* next_out = buf;
    rc = BrotliDecoderDecompressStream(state, &available_in, &next_in, &available_out, &next_out,
                                       nullptr);
    out.append(reinterpret_cast<char*>(buf), sizeof(buf) - available_out);
  }
  BrotliDecoderDestroyInstance(state);
  if (rc != BROTLI_DECODER_RESULT_SUCCESS || available_in != 0) return std::nullopt;
  return out;
}

}  // namespace qai::sandbox::testing
