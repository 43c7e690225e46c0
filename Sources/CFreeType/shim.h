#include <ft2build.h>
#include FT_FREETYPE_H
#include <fontconfig/fontconfig.h>
#include <stdio.h>
#include <string.h>

/* FT_LOAD_TARGET_LIGHT is a function-like macro, which Swift does not import: glyphs are loaded
   rendered, antialiased, with light (vertical-only) hinting, so advances keep the font's widths. */
static inline FT_Int32 deconvnet_ft_render_light(void) { return FT_LOAD_RENDER | FT_LOAD_TARGET_LIGHT; }

/* The font file fontconfig picks for `pattern` (e.g. "DejaVu Sans" or ":charset=732b"), copied into
   `path`; 0 when fontconfig has a font that covers `character` (0: any), else -1. */
static inline int deconvnet_fontconfig_file(const char *pattern, unsigned int character, char *path, int size) {
    int found = -1;
    if (!FcInit()) return -1;
    FcPattern *query = FcNameParse((const FcChar8 *)pattern);
    if (!query) return -1;
    FcConfigSubstitute(NULL, query, FcMatchPattern);
    FcDefaultSubstitute(query);
    FcResult result;
    FcPattern *match = FcFontMatch(NULL, query, &result);
    FcChar8 *file = NULL;
    FcCharSet *charset = NULL;
    if (match && FcPatternGetString(match, FC_FILE, 0, &file) == FcResultMatch
        && (character == 0 || (FcPatternGetCharSet(match, FC_CHARSET, 0, &charset) == FcResultMatch && FcCharSetHasChar(charset, character)))) {
        snprintf(path, size, "%s", (const char *)file);
        found = 0;
    }
    if (match) FcPatternDestroy(match);
    FcPatternDestroy(query);
    return found;
}
