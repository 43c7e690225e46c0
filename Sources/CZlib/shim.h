#include <zlib.h>

/* inflateInit2 is a macro, which Swift cannot call. windowBits 15 + 32 reads zlib and gzip streams. */
static inline int deconvnet_inflate_init(z_stream *stream) {
    return inflateInit2(stream, 15 + 32);
}
