// libFuzzer target: the restricted unpickler and the torch checkpoint readers
// on arbitrary bytes. The first byte picks which: odd bytes feed data.pkl's
// unpickler directly, even bytes a whole checkpoint file, which goes to the
// legacy reader when it opens with 0x80 and to the zip reader otherwise. Any
// input must end in tensors inside the buffer or an attnviz::Error; never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "attnviz/error.h"
#include "io/torch_checkpoint.h"
#include "tensor_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const bool pickle_only = data[0] & 1;
    ++data, --size;
    try {
        if (pickle_only) {
            attnviz::io::unpickle_state_dict(data, size, "fuzz.pkl");
        } else {
            for (const auto& tensor : attnviz::io::read_torch_checkpoint(data, size, "fuzz.bin"))
                read_tensor_within(tensor, data, size);
        }
    } catch (const attnviz::Error&) {
    }
    return 0;
}
