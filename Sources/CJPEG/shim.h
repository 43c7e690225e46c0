#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

/* libjpeg reports fatal errors through a callback that must not return; Swift cannot use setjmp,
   so decoding lives here. On error the message is copied to `message` and -1 is returned. */
struct deconvnet_jpeg_error {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void deconvnet_jpeg_error_exit(j_common_ptr info) {
    struct deconvnet_jpeg_error *error = (struct deconvnet_jpeg_error *)info->err;
    (*info->err->format_message)(info, error->message);
    longjmp(error->jump, 1);
}

/* Warnings are silent, except that image data ending early (the file, or a scan at a marker) is an error
   at once: libjpeg would pad the stream and decode every remaining row as gray, which for a small file
   with a large header takes seconds. Pillow refuses such files too ("image file is truncated"). */
static void deconvnet_jpeg_warning(j_common_ptr info, int level) {
    int code = info->err->msg_code;
    if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) {
        struct deconvnet_jpeg_error *error = (struct deconvnet_jpeg_error *)info->err;
        snprintf(error->message, JMSG_LENGTH_MAX, "JPEG data is truncated (the stream ends early)");
        longjmp(error->jump, 1);
    }
}

/* Decodes `data` into a malloc'ed buffer of height*width*channels bytes (channels 1 or 3, row-major,
   interleaved). The caller frees *pixels with free(). Returns 0 on success, -1 on a decoding error, and -2,
   with the header's width, height and channels set, when the header declares more than `max_pixels` pixels
   or `max_bytes` bytes: then nothing is allocated for the image. */
static inline int deconvnet_jpeg_decode(const unsigned char *data, unsigned long size,
                                        unsigned long long max_pixels, unsigned long long max_bytes,
                                        unsigned char **pixels, int *width, int *height,
                                        int *channels, char *message, int message_size) {
    struct jpeg_decompress_struct info;
    struct deconvnet_jpeg_error error;
    unsigned char *volatile buffer = NULL;
    *pixels = NULL;
    info.err = jpeg_std_error(&error.manager);
    error.manager.error_exit = deconvnet_jpeg_error_exit;
    error.manager.emit_message = deconvnet_jpeg_warning;
    error.message[0] = 0;
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&info);
        free(buffer);
        snprintf(message, message_size, "%s", error.message);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, size);
    jpeg_read_header(&info, TRUE);
    if (info.num_components != 1) info.out_color_space = JCS_RGB;
    {
        unsigned long long area = (unsigned long long)info.image_width * info.image_height;
        int components = info.num_components == 1 ? 1 : 3;
        if (area > max_pixels || area * components > max_bytes) {
            *width = (int)info.image_width;
            *height = (int)info.image_height;
            *channels = components;
            jpeg_destroy_decompress(&info);
            return -2;
        }
    }
    jpeg_start_decompress(&info);
    int stride = info.output_width * info.output_components;
    buffer = (unsigned char *)malloc((size_t)stride * info.output_height);
    if (!buffer) { snprintf(message, message_size, "out of memory"); jpeg_destroy_decompress(&info); return -1; }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = buffer + (size_t)info.output_scanline * stride;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    *width = info.output_width;
    *height = info.output_height;
    *channels = info.output_components;
    jpeg_destroy_decompress(&info);
    *pixels = buffer;
    return 0;
}
