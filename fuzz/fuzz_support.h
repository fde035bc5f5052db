#ifndef IMBRIDGE_FUZZ_FUZZ_SUPPORT_H_
#define IMBRIDGE_FUZZ_FUZZ_SUPPORT_H_

#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "absl/strings/string_view.h"
#include "imbridge/v1/events.pb.h"

// What the fuzz targets share: building a random v1::RichText from the
// fuzzer's bytes, and the properties every parser's output must have. A
// violated property aborts (the fuzzer reports it as a crash with the
// input). Single-threaded use; no state.

namespace imbridge::fuzz {

// Aborts with `what` on stderr when `condition` is false.
void Check(bool condition, absl::string_view what);

// Checks what every parser promises of the RichText it returns: each span
// lies inside the text (offset + length <= text size, no overflow).
void CheckSpansInRange(const v1::RichText& text, absl::string_view parser);

// A RichText built from the fuzzer's bytes: a text drawn from markup
// characters of every format the bridge speaks, multi-byte and astral
// characters, and raw bytes (so sometimes invalid UTF-8), and spans of any
// kind (unknown kinds too) with random, sometimes out-of-range, offsets and
// lengths, urls, user ids and languages. With `valid_only`, the text is
// valid UTF-8 and every span is in range, on character boundaries, of a
// known kind.
v1::RichText ConsumeRichText(FuzzedDataProvider& provider, bool valid_only);

}  // namespace imbridge::fuzz

#endif  // IMBRIDGE_FUZZ_FUZZ_SUPPORT_H_
