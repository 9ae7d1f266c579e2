/* Compiled pixel loops of pass 2: rs_change._kernels (wrapped by rs_change/kernels.py).
 *
 * Each function is a loop that the numpy code of rs_change does in several passes over memory;
 * the arithmetic is the numpy code's, operation for operation, in the same float types (float32
 * features, distances and interpolation, float64 area sums added in pixel order). Built with
 * -ffp-contract=off (no fused multiply-add) and without fast-math, so the results are the numpy
 * path's bit for bit (tests/test_kernels.py). The GIL is released inside every loop.
 *
 * Arrays come in through the buffer protocol, C-contiguous; rs_change/kernels.py checks shapes
 * and types before calling.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


/* the vector loops also built for AVX2 (chosen at load time where the CPU has it): the same IEEE
 * float32 operations, twice as wide (no FMA: -ffp-contract=off) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define WIDE __attribute__((target_clones("avx2", "default")))
#else
#define WIDE
#endif

/* the most bands classify_u8 reads (rs_change.kernels.MAX_BANDS); more take the numpy path */
#define MAX_BANDS 16
/* buffers one call holds: classify_u8's bands and its 14 other arrays */
#define MAX_BUFFERS (MAX_BANDS + 16)

typedef struct {
    Py_buffer views[MAX_BUFFERS];
    int n;
} Buffers;

static void release_all(Buffers *b) {
    for (int i = 0; i < b->n; i++) PyBuffer_Release(&b->views[i]);
    b->n = 0;
}

/* a C-contiguous buffer of at least `need` bytes (writable if asked), kept in `b` */
static void *get(Buffers *b, PyObject *obj, Py_ssize_t need, int writable, const char *what) {
    if (b->n >= MAX_BUFFERS) {
        PyErr_SetString(PyExc_ValueError, "too many buffers");
        return NULL;
    }
    Py_buffer *v = &b->views[b->n];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return NULL;
    b->n++;
    if (v->len < need) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %zd", what, v->len, need);
        return NULL;
    }
    return v->buf;
}

/* one source row along x: a[x] * w0 + a[x + 1] * w1 in float32 (or a[x] itself) */
WIDE static void row_lerp(const uint8_t *restrict a, Py_ssize_t w, int shift_x, float w0, float w1, float *restrict t) {
    if (shift_x) {
        for (Py_ssize_t x = 0; x < w; x++) {
            float p = (float)a[x] * w0;
            float q = (float)a[x + 1] * w1;
            t[x] = p + q;
        }
    } else {
        for (Py_ssize_t x = 0; x < w; x++) t[x] = (float)a[x];
    }
}

/* two interpolated rows along y, + 0.5, truncated (the floor: values are >= 0); nodata moved */
WIDE static void row_round(const float *restrict top, const float *restrict bot, Py_ssize_t w, int shift_y, float w0,
                      float w1, int nd, int adj, uint8_t *restrict o) {
    const float half = 0.5f;
    if (shift_y) {
        for (Py_ssize_t x = 0; x < w; x++) {
            float p = top[x] * w0;
            float q = bot[x] * w1;
            float v = p + q;
            v = v + half;
            int32_t iv = (int32_t)v;
            iv += adj * (iv == nd);
            o[x] = (uint8_t)iv;
        }
    } else {
        for (Py_ssize_t x = 0; x < w; x++) {
            float v = top[x] + half;
            int32_t iv = (int32_t)v;
            iv += adj * (iv == nd);
            o[x] = (uint8_t)iv;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * lerp_u8(src, nb, sh, sw, r0, r1, cofs, w0x, w1x, w0y, w1y, shift_x, shift_y, nd, out, h, w)
 * readers._lerp_strips + readers._avoid for uint8 (bands, rows, cols) with consecutive columns:
 * output column x reads source columns cofs + x and cofs + x + 1, output row y source rows
 * r0[y] and r1[y] (int64). float32 products and sums in numpy's order; v + 0.5 >= 0, so its
 * floor is the truncation. A value equal to nd (0..255; -1 none) moves to the next value.
 * ------------------------------------------------------------------------------------------- */
static PyObject *lerp_u8(PyObject *self, PyObject *args) {
    PyObject *o_src, *o_r0, *o_r1, *o_out;
    Py_ssize_t nb, sh, sw, cofs, h, w;
    float w0x, w1x, w0y, w1y;
    int shift_x, shift_y, nd;
    if (!PyArg_ParseTuple(args, "OnnnOOnffffppiOnn", &o_src, &nb, &sh, &sw, &o_r0, &o_r1, &cofs, &w0x, &w1x, &w0y,
                          &w1y, &shift_x, &shift_y, &nd, &o_out, &h, &w))
        return NULL;
    Buffers b = {.n = 0};
    const uint8_t *src = get(&b, o_src, nb * sh * sw, 0, "src");
    const int64_t *r0 = src ? get(&b, o_r0, h * 8, 0, "r0") : NULL;
    const int64_t *r1 = r0 ? get(&b, o_r1, h * 8, 0, "r1") : NULL;
    uint8_t *out = r1 ? get(&b, o_out, nb * h * w, 1, "out") : NULL;
    if (!out) {
        release_all(&b);
        return NULL;
    }
    if (cofs < 0 || cofs + w + (shift_x ? 1 : 0) > sw) {
        release_all(&b);
        PyErr_SetString(PyExc_ValueError, "lerp_u8: columns outside the source");
        return NULL;
    }
    for (Py_ssize_t y = 0; y < h; y++) {
        if (r0[y] < 0 || r0[y] >= sh || r1[y] < 0 || r1[y] >= sh) {
            release_all(&b);
            PyErr_SetString(PyExc_ValueError, "lerp_u8: rows outside the source");
            return NULL;
        }
    }
    const int adj = nd < 255 ? 1 : -1;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    float *top = malloc(sizeof(float) * (size_t)w), *bot = malloc(sizeof(float) * (size_t)w);
    if (top && bot) {
        for (Py_ssize_t k = 0; k < nb; k++) {
            Py_ssize_t in_top = -1, in_bot = -1; /* the source rows the two buffers hold */
            for (Py_ssize_t y = 0; y < h; y++) {
                if (r0[y] != in_top) {
                    if (r0[y] == in_bot) { /* the last bottom row is this top row: swap */
                        float *t = top;
                        top = bot, bot = t;
                        in_bot = in_top, in_top = r0[y];
                    } else {
                        row_lerp(src + (k * sh + r0[y]) * sw + cofs, w, shift_x, w0x, w1x, top);
                        in_top = r0[y];
                    }
                }
                if (shift_y && r1[y] != in_bot) {
                    row_lerp(src + (k * sh + r1[y]) * sw + cofs, w, shift_x, w0x, w1x, bot);
                    in_bot = r1[y];
                }
                row_round(top, bot, w, shift_y, w0y, w1y, nd, adj, out + (k * h + y) * w);
            }
        }
    }
    failed = !(top && bot);
    free(top), free(bot);
    Py_END_ALLOW_THREADS
    release_all(&b);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* any_all_nodata(src, nb, n, nd) -> bool: some pixel of a (nb, n) uint8 array has every band == nd */
static PyObject *any_all_nodata(PyObject *self, PyObject *args) {
    PyObject *o_src;
    Py_ssize_t nb, n;
    int nd;
    if (!PyArg_ParseTuple(args, "Onni", &o_src, &nb, &n, &nd)) return NULL;
    Buffers b = {.n = 0};
    const uint8_t *src = get(&b, o_src, nb * n, 0, "src");
    if (!src) {
        release_all(&b);
        return NULL;
    }
    int found = 0;
    Py_BEGIN_ALLOW_THREADS
    const Py_ssize_t chunk = 4096;
    uint8_t *every = malloc(chunk);
    if (every) {
        for (Py_ssize_t s = 0; s < n && !found; s += chunk) {
            Py_ssize_t e = s + chunk < n ? s + chunk : n;
            for (Py_ssize_t i = s; i < e; i++) every[i - s] = src[i] == nd;
            for (Py_ssize_t k = 1; k < nb; k++) {
                const uint8_t *bk = src + k * n;
                for (Py_ssize_t i = s; i < e; i++) every[i - s] &= bk[i] == nd;
            }
            uint8_t any = 0;
            for (Py_ssize_t i = 0; i < e - s; i++) any |= every[i];
            found = any != 0;
        }
        free(every);
    } else {
        found = -1;
    }
    Py_END_ALLOW_THREADS
    release_all(&b);
    if (found < 0) return PyErr_NoMemory();
    return PyBool_FromLong(found);
}

/* clustering._nearest on the first n pixels of X (nf rows of stride `stride`): the same float32
 * terms added (manhattan: absolute values; chebyshev: maximum) in feature order; strictly closer
 * wins, so ties go to the lowest centre index */
WIDE static void nearest(const float *restrict X, Py_ssize_t stride, Py_ssize_t n, const float *restrict cen, Py_ssize_t k,
                    Py_ssize_t nf, int metric, float *restrict d, float *restrict best, int32_t *restrict lab) {
    for (Py_ssize_t j = 0; j < k; j++) {
        const float c0 = cen[j * nf];
        if (metric == 0) {
            for (Py_ssize_t m = 0; m < n; m++) {
                float t = X[m] - c0;
                d[m] = t * t;
            }
        } else {
            for (Py_ssize_t m = 0; m < n; m++) {
                float t = X[m] - c0;
                d[m] = t < 0 ? -t : t;
            }
        }
        for (Py_ssize_t f = 1; f < nf; f++) {
            const float cf = cen[j * nf + f];
            const float *xf = X + f * stride;
            if (metric == 0) {
                for (Py_ssize_t m = 0; m < n; m++) {
                    float t = xf[m] - cf;
                    float t2 = t * t;
                    d[m] = d[m] + t2;
                }
            } else if (metric == 1) {
                for (Py_ssize_t m = 0; m < n; m++) {
                    float t = xf[m] - cf;
                    d[m] = d[m] + (t < 0 ? -t : t);
                }
            } else {
                for (Py_ssize_t m = 0; m < n; m++) {
                    float t = xf[m] - cf;
                    float a = t < 0 ? -t : t;
                    d[m] = d[m] >= a ? d[m] : a; /* np.maximum of finite values */
                }
            }
        }
        if (j == 0) {
            for (Py_ssize_t m = 0; m < n; m++) {
                best[m] = d[m];
                lab[m] = 0;
            }
        } else {
            for (Py_ssize_t m = 0; m < n; m++) {
                if (d[m] < best[m]) {
                    best[m] = d[m];
                    lab[m] = (int32_t)j;
                }
            }
        }
    }
}

/* the scaled features of pixels (row r, columns cols[:n]) from the per-feature tables: feature f
 * reads band vr0[f] (a table of 256) or the pair (vr0[f], vr1[f]) (65,536: a << 8 | b) */
WIDE static void features(const uint8_t **bands, Py_ssize_t r, Py_ssize_t w, const int32_t *restrict cols,
                          Py_ssize_t n, const float *restrict vals, Py_ssize_t nf, const int64_t *vr0,
                          const int64_t *vr1, float *restrict X) {
    const int dense = n == w; /* every pixel of the row: cols[m] == m */
    for (Py_ssize_t f = 0; f < nf; f++) {
        const uint8_t *restrict a = bands[vr0[f]] + r * w;
        const float *restrict tab = vals + f * 65536;
        float *restrict xf = X + f * w;
        if (vr1[f] >= 0) {
            const uint8_t *restrict bb = bands[vr1[f]] + r * w;
            if (dense) {
                for (Py_ssize_t m = 0; m < n; m++) xf[m] = tab[((int32_t)a[m] << 8) | bb[m]];
            } else {
                for (Py_ssize_t m = 0; m < n; m++) xf[m] = tab[((int32_t)a[cols[m]] << 8) | bb[cols[m]]];
            }
        } else if (dense) {
            for (Py_ssize_t m = 0; m < n; m++) xf[m] = tab[a[m]];
        } else {
            for (Py_ssize_t m = 0; m < n; m++) xf[m] = tab[a[cols[m]]];
        }
    }
}

/* the observed pixels of one row (offset `off` in every band): valid, not every band == nd (with
 * nd_all), every band's value allowed by its table okv[band][value] (with check_okv) */
WIDE static void observed_row(const uint8_t **bands, Py_ssize_t nr, Py_ssize_t off, Py_ssize_t w, int nd_all, int nd,
                         int check_okv, const uint8_t *restrict okv, const uint8_t *restrict valid,
                         uint8_t *restrict obs, uint8_t *restrict some) {
    for (Py_ssize_t c = 0; c < w; c++) obs[c] = valid[c] != 0;
    if (nd_all) {
        const uint8_t ndv = (uint8_t)nd;
        const uint8_t *restrict b0 = bands[0] + off;
        for (Py_ssize_t c = 0; c < w; c++) some[c] = b0[c] != ndv;
        for (Py_ssize_t k = 1; k < nr; k++) {
            const uint8_t *restrict bk = bands[k] + off;
            for (Py_ssize_t c = 0; c < w; c++) some[c] |= bk[c] != ndv;
        }
        for (Py_ssize_t c = 0; c < w; c++) obs[c] &= some[c];
    }
    if (check_okv) {
        for (Py_ssize_t k = 0; k < nr; k++) {
            const uint8_t *restrict bk = bands[k] + off;
            const uint8_t *restrict t = okv + k * 256;
            for (Py_ssize_t c = 0; c < w; c++) obs[c] &= t[bk[c]];
        }
    }
}

/* The water decision of one pixel (rs_change.decision.Decision.of_levels): its level reaches the
 * level its group needs. Every need is at least 1, so a pixel of level 0 is land in every mode. */
static inline uint8_t is_water(uint8_t level, uint8_t need) { return level >= need; }

/* The water fraction of one pixel (rs_change.decision.Decision.percent): its unmixed percent, at
 * least `fw` where it is water and below `fw` where it is land. */
static inline uint8_t bounded_percent(uint8_t water, uint8_t pct, uint8_t fw) {
    if (water) return pct > fw ? pct : fw;
    return pct < fw ? pct : (uint8_t)(fw - 1);
}

/* ---------------------------------------------------------------------------------------------
 * classify_u8(bands, h, w, valid, okv, check_okv, nd_all, nd, vals, nf, vr0, vr1,
 *             main_c, k_main, main_metric, want_clusters, rule, ia, ib,
 *             fine_c, k_fine, fine_metric, need, id_tab, mode, water, clusters,
 *             pct, fw, want_fraction, fraction)
 * The observed mask (per-band tables okv (nr, 256) and, with nd_all, not every band == nd),
 * written back to `valid`; cluster ids of the date's k-means (when wanted, or mode 2); water as
 * rs_change.decision.Decision.encoding() says: mode 0 ("levels") the rule table's level against
 * need[0]; 1 ("groups") the level against the need of the pixel's fine group (pixels of level 0
 * are land and their fine group is not computed); 2 ("clusters") the cluster ids (id_tab[id]).
 * With want_fraction, the water fraction: the percent table `pct` (same index as `rule`) bounded
 * by the pixel's water (bounded_percent), or 100 x water in mode 2 (no unmixing). Outputs are left
 * alone where not observed (the caller fills them with 255).
 * ------------------------------------------------------------------------------------------- */
static PyObject *classify_u8(PyObject *self, PyObject *args) {
    PyObject *o_bands, *o_valid, *o_okv, *o_vals, *o_vr0, *o_vr1, *o_main, *o_rule, *o_fine, *o_ftab, *o_itab, *o_water,
        *o_cl, *o_pct, *o_frac;
    Py_ssize_t h, w, nf, k_main, k_fine, ia, ib;
    int check_okv, nd_all, nd, main_metric, want_clusters, fine_metric, mode, fw_i, want_fraction;
    if (!PyArg_ParseTuple(args, "OnnOOppiOnOOOnipOnnOniOOiOOOipO", &o_bands, &h, &w, &o_valid, &o_okv, &check_okv,
                          &nd_all, &nd, &o_vals, &nf, &o_vr0, &o_vr1, &o_main, &k_main, &main_metric, &want_clusters,
                          &o_rule, &ia, &ib, &o_fine, &k_fine, &fine_metric, &o_ftab, &o_itab, &mode, &o_water, &o_cl,
                          &o_pct, &fw_i, &want_fraction, &o_frac))
        return NULL;
    if (!PyTuple_Check(o_bands) || PyTuple_GET_SIZE(o_bands) < 1 || PyTuple_GET_SIZE(o_bands) > MAX_BANDS || nf < 1
            || w < 1 || mode < 0 || mode > 2 || fw_i < 1 || fw_i > 255) {
        PyErr_SetString(PyExc_ValueError, "classify_u8: 1 to MAX_BANDS bands, 1 or more features, mode 0 to 2");
        return NULL;
    }
    const uint8_t fw = (uint8_t)fw_i;
    Py_ssize_t nr = PyTuple_GET_SIZE(o_bands);
    Buffers b = {.n = 0};
    const uint8_t *bands[MAX_BANDS];
    int ok = 1;
    for (Py_ssize_t i = 0; i < nr && ok; i++) ok = (bands[i] = get(&b, PyTuple_GET_ITEM(o_bands, i), h * w, 0, "band")) != NULL;
    uint8_t *valid = ok ? get(&b, o_valid, h * w, 1, "valid") : NULL;
    const uint8_t *okv = valid ? get(&b, o_okv, nr * 256, 0, "okv") : NULL;
    const float *vals = okv ? get(&b, o_vals, nf * 65536 * 4, 0, "vals") : NULL;
    const int64_t *vr0 = vals ? get(&b, o_vr0, nf * 8, 0, "vr0") : NULL;
    const int64_t *vr1 = vr0 ? get(&b, o_vr1, nf * 8, 0, "vr1") : NULL;
    const float *main_c = vr1 ? get(&b, o_main, k_main * nf * 4, 0, "main centres") : NULL;
    const uint8_t *rule = main_c ? get(&b, o_rule, mode == 2 ? 0 : 65536, 0, "rule") : NULL;
    const float *fine_c = rule ? get(&b, o_fine, mode == 1 ? k_fine * nf * 4 : 0, 0, "fine centres") : NULL;
    const uint8_t *need = fine_c ? get(&b, o_ftab, 256, 0, "needs") : NULL;
    const uint8_t *itab = need ? get(&b, o_itab, 256, 0, "water ids") : NULL;
    uint8_t *water = itab ? get(&b, o_water, h * w, 1, "water") : NULL;
    uint8_t *clusters = water ? get(&b, o_cl, want_clusters ? h * w : 0, 1, "clusters") : NULL;
    const uint8_t *pct = clusters ? get(&b, o_pct, want_fraction && mode != 2 ? 65536 : 0, 0, "percent") : NULL;
    uint8_t *frac = pct ? get(&b, o_frac, want_fraction ? h * w : 0, 1, "fraction") : NULL;
    if (!frac) {
        release_all(&b);
        return NULL;
    }
    for (Py_ssize_t f = 0; f < nf; f++) {
        if (vr0[f] < 0 || vr0[f] >= nr || vr1[f] >= nr) {
            release_all(&b);
            PyErr_SetString(PyExc_ValueError, "classify_u8: feature band out of range");
            return NULL;
        }
    }
    if (ia < 0 || ia >= nr || ib < 0 || ib >= nr || k_main < 1 || k_main > 254 || (mode == 1 && (k_fine < 1 || k_fine > 254))) {
        release_all(&b);
        PyErr_SetString(PyExc_ValueError, "classify_u8: bad rule bands or number of centres");
        return NULL;
    }
    float *X = malloc(sizeof(float) * (size_t)(nf * w));
    float *d = malloc(sizeof(float) * (size_t)w);
    float *best = malloc(sizeof(float) * (size_t)w);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)w);
    int32_t *cols = malloc(sizeof(int32_t) * (size_t)w);
    uint8_t *obs = malloc((size_t)w);
    uint8_t *some = malloc((size_t)w);
    uint8_t *lvl = malloc((size_t)w);
    if (!X || !d || !best || !lab || !cols || !obs || !some || !lvl) {
        free(X), free(d), free(best), free(lab), free(cols), free(obs), free(some), free(lvl);
        release_all(&b);
        return PyErr_NoMemory();
    }
    const int need_main = want_clusters || mode == 2;
    const uint8_t need0 = need[0];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < h; r++) {
        uint8_t *vr = valid + r * w;
        observed_row(bands, nr, r * w, w, nd_all, nd, check_okv, okv, vr, obs, some);
        uint8_t *wr = water + r * w;
        const uint8_t *restrict ba = bands[ia] + r * w;
        const uint8_t *restrict bb = bands[ib] + r * w;
        Py_ssize_t p = 0; /* pixels of level 1 or 2 whose fine group decides (mode 1), in cols/lvl */
        if (!need_main) { /* modes 0 and 1: the rule on every pixel, the observed ones kept */
            for (Py_ssize_t c = 0; c < w; c++) {
                uint8_t o = obs[c];
                uint8_t lv = rule[((int32_t)ba[c] << 8) | bb[c]] * o;
                vr[c] = o;
                wr[c] = o ? (mode == 0 ? is_water(lv, need0) : 0) : wr[c];
                cols[p] = (int32_t)c;
                lvl[p] = lv;
                p += lv != 0;
            }
        } else {
            Py_ssize_t n = 0;
            for (Py_ssize_t c = 0; c < w; c++) {
                vr[c] = obs[c];
                cols[n] = (int32_t)c;
                n += obs[c];
            }
            if (n > 0) {
                features(bands, r, w, cols, n, vals, nf, vr0, vr1, X);
                nearest(X, w, n, main_c, k_main, nf, main_metric, d, best, lab);
                if (want_clusters) {
                    uint8_t *cr = clusters + r * w;
                    for (Py_ssize_t m = 0; m < n; m++) cr[cols[m]] = (uint8_t)lab[m];
                }
                if (mode == 2) {
                    for (Py_ssize_t m = 0; m < n; m++) wr[cols[m]] = itab[lab[m]];
                } else {
                    for (Py_ssize_t m = 0; m < n; m++) { /* the levels; the pixels of level 1 or 2 move to the front */
                        int32_t c = cols[m];
                        uint8_t lv = rule[((int32_t)ba[c] << 8) | bb[c]];
                        wr[c] = mode == 0 ? is_water(lv, need0) : 0;
                        cols[p] = c;
                        lvl[p] = lv;
                        p += lv != 0;
                    }
                }
            }
        }
        if (mode == 1 && p > 0) {
            features(bands, r, w, cols, p, vals, nf, vr0, vr1, X);
            nearest(X, w, p, fine_c, k_fine, nf, fine_metric, d, best, lab);
            for (Py_ssize_t m = 0; m < p; m++) wr[cols[m]] = is_water(lvl[m], need[lab[m]]);
        }
        if (want_fraction) {
            uint8_t *fr = frac + r * w;
            if (mode == 2) {
                for (Py_ssize_t c = 0; c < w; c++) fr[c] = obs[c] ? (uint8_t)(wr[c] * 100) : fr[c];
            } else {
                for (Py_ssize_t c = 0; c < w; c++)
                    fr[c] = obs[c] ? bounded_percent(wr[c], pct[((int32_t)ba[c] << 8) | bb[c]], fw) : fr[c];
            }
        }
    }
    Py_END_ALLOW_THREADS
    free(X), free(d), free(best), free(lab), free(cols), free(obs), free(some), free(lvl);
    release_all(&b);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------
 * nearest_rows(xt, nf, m, centers, k, metric, two, is64, labels, best, second)
 * clustering._nearest (two = 0) and clustering._nearest_two (two = 1, euclidean) on m points
 * given as the columns of xt (nf rows of m, float32 or float64 as is64 says; centres (k, nf) in
 * the same type): the same terms, added in feature order in the same type, the nearest centre
 * strictly closer (ties to the lowest index), the second smallest distance as
 * min(second, max(best, d)) in centre order. Labels int32; best and second in the data's type.
 * The inputs are finite (KMeans checks them), where these comparisons are numpy's.
 * ------------------------------------------------------------------------------------------- */
#define NEAREST_POINT(NAME, T) \
    static inline int32_t NAME(const T *restrict x, Py_ssize_t stride, Py_ssize_t nf, const T *restrict cen, \
                               Py_ssize_t k, int metric, int two, T *restrict best, T *restrict second) { \
        T b = 0, s2 = 0; \
        int32_t l = 0; \
        for (Py_ssize_t j = 0; j < k; j++) { \
            const T *c = cen + j * nf; \
            T t = x[0] - c[0]; \
            T d = metric == 0 ? t * t : (t <= 0 ? (T)0 - t : t); /* |t| (+0 for -0, as np.abs) */ \
            for (Py_ssize_t f = 1; f < nf; f++) { \
                T u = x[f * stride] - c[f]; \
                if (metric == 0) { \
                    T u2 = u * u; \
                    d = d + u2; \
                } else { \
                    T a = u <= 0 ? (T)0 - u : u; \
                    d = metric == 1 ? d + a : (d >= a ? d : a); \
                } \
            } \
            if (j == 0) { \
                b = d; \
                s2 = (T)INFINITY; \
            } else { \
                if (two) { \
                    T mx = b >= d ? b : d; \
                    s2 = s2 <= mx ? s2 : mx; \
                } \
                if (d < b) { \
                    b = d; \
                    l = (int32_t)j; \
                } \
            } \
        } \
        *best = b; \
        *second = s2; \
        return l; \
    }

/* one point (features x[f * stride]): its nearest centre, the distance and the second smallest */
NEAREST_POINT(nearest_point_f32, float)
NEAREST_POINT(nearest_point_f64, double)

#define NEAREST_ROWS(NAME, POINT, T) \
    WIDE static void NAME(const T *restrict xt, Py_ssize_t nf, Py_ssize_t m, const T *restrict cen, Py_ssize_t k, \
                          int metric, int two, int32_t *restrict lab, T *restrict best, T *restrict second) { \
        for (Py_ssize_t p = 0; p < m; p++) { \
            T b, s2; \
            lab[p] = POINT(xt + p, m, nf, cen, k, metric, two, &b, &s2); \
            best[p] = b; \
            if (two) second[p] = s2; \
        } \
    }

NEAREST_ROWS(nearest_rows_f32, nearest_point_f32, float)
NEAREST_ROWS(nearest_rows_f64, nearest_point_f64, double)

static PyObject *nearest_rows(PyObject *self, PyObject *args) {
    PyObject *o_xt, *o_c, *o_lab, *o_best, *o_second;
    Py_ssize_t nf, m, k;
    int metric, two, is64;
    if (!PyArg_ParseTuple(args, "OnnOnippOOO", &o_xt, &nf, &m, &o_c, &k, &metric, &two, &is64, &o_lab, &o_best,
                          &o_second))
        return NULL;
    if (nf < 1 || m < 0 || k < 1 || metric < 0 || metric > 2 || (two && metric != 0)) {
        PyErr_SetString(PyExc_ValueError, "nearest_rows: 1 or more features and centres, metric 0 to 2");
        return NULL;
    }
    Py_ssize_t sz = is64 ? 8 : 4;
    Buffers b = {.n = 0};
    const void *xt = get(&b, o_xt, nf * m * sz, 0, "points");
    const void *cen = xt ? get(&b, o_c, k * nf * sz, 0, "centres") : NULL;
    int32_t *lab = cen ? get(&b, o_lab, m * 4, 1, "labels") : NULL;
    void *best = lab ? get(&b, o_best, m * sz, 1, "best") : NULL;
    void *second = best ? get(&b, o_second, two ? m * sz : 0, 1, "second") : NULL;
    if (!second) {
        release_all(&b);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (is64)
        nearest_rows_f64(xt, nf, m, cen, k, metric, two, lab, best, second);
    else
        nearest_rows_f32(xt, nf, m, cen, k, metric, two, lab, best, second);
    Py_END_ALLOW_THREADS
    release_all(&b);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------
 * bounds_step(xt, nf, m, centers, k, labels, u, lo, delta, top0, top1, slack, sums, counts)
 * One iteration of clustering's Hamerly bounds (kmeans_ops._bounds_step_numpy) in one pass over
 * the points, float64: each point's upper bound u grows by its centre's move delta[label], its
 * lower bound lo shrinks by the largest move of another centre (delta[top1] for the points of
 * centre top0, the most moved, else delta[top0]; not with one centre); a point whose bounds no
 * longer prove its centre nearest (u * slack >= lo) is measured again (nearest_rows' terms: the
 * same labels and distances), its bounds set to the square roots, and when its label changes it
 * is added to sums[0] (its old centre) and sums[1] (its new one), (2, k, nf) float64 zeroed by
 * the caller, in point order as np.bincount adds them; counts (2, k) int64 likewise. Returns the
 * number of points that changed centre.
 * ------------------------------------------------------------------------------------------- */
static Py_ssize_t bounds_step_f64(const double *restrict xt, Py_ssize_t nf, Py_ssize_t m, const double *restrict cen,
                                  Py_ssize_t k, int32_t *restrict lab, double *restrict u, double *restrict lo,
                                  const double *restrict delta, Py_ssize_t top0, Py_ssize_t top1, double slack,
                                  double *restrict sums, int64_t *restrict counts) {
    Py_ssize_t moved = 0;
    for (Py_ssize_t p = 0; p < m; p++) {
        int32_t l = lab[p];
        double up = u[p] + delta[l];
        double low = lo[p];
        if (k > 1) low = low - (l == top0 ? delta[top1] : delta[top0]);
        u[p] = up;
        lo[p] = low;
        if (!(up * slack >= low)) continue;
        double b, s2;
        int32_t nl = nearest_point_f64(xt + p, m, nf, cen, k, 0, 1, &b, &s2);
        u[p] = sqrt(b);
        lo[p] = sqrt(s2);
        if (nl != l) {
            for (Py_ssize_t f = 0; f < nf; f++) {
                double x = xt[f * m + p];
                sums[l * nf + f] += x;
                sums[(k + nl) * nf + f] += x;
            }
            counts[l] += 1;
            counts[k + nl] += 1;
            lab[p] = nl;
            moved++;
        }
    }
    return moved;
}

static PyObject *bounds_step(PyObject *self, PyObject *args) {
    PyObject *o_xt, *o_c, *o_lab, *o_u, *o_lo, *o_delta, *o_sums, *o_counts;
    Py_ssize_t nf, m, k, top0, top1;
    double slack;
    if (!PyArg_ParseTuple(args, "OnnOnOOOOnndOO", &o_xt, &nf, &m, &o_c, &k, &o_lab, &o_u, &o_lo, &o_delta, &top0,
                          &top1, &slack, &o_sums, &o_counts))
        return NULL;
    if (nf < 1 || m < 0 || k < 1 || top0 < 0 || top0 >= k || top1 < 0 || top1 >= k) {
        PyErr_SetString(PyExc_ValueError, "bounds_step: 1 or more features and centres, top centres among them");
        return NULL;
    }
    Buffers b = {.n = 0};
    const double *xt = get(&b, o_xt, nf * m * 8, 0, "points");
    const double *cen = xt ? get(&b, o_c, k * nf * 8, 0, "centres") : NULL;
    int32_t *lab = cen ? get(&b, o_lab, m * 4, 1, "labels") : NULL;
    double *u = lab ? get(&b, o_u, m * 8, 1, "upper bounds") : NULL;
    double *lo = u ? get(&b, o_lo, m * 8, 1, "lower bounds") : NULL;
    const double *delta = lo ? get(&b, o_delta, k * 8, 0, "moves") : NULL;
    double *sums = delta ? get(&b, o_sums, 2 * k * nf * 8, 1, "sums") : NULL;
    int64_t *counts = sums ? get(&b, o_counts, 2 * k * 8, 1, "counts") : NULL;
    if (!counts) {
        release_all(&b);
        return NULL;
    }
    int bad = 0;
    for (Py_ssize_t p = 0; p < m; p++) bad |= lab[p] < 0 || lab[p] >= k;
    Py_ssize_t moved = 0;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        moved = bounds_step_f64(xt, nf, m, cen, k, lab, u, lo, delta, top0, top1, slack, sums, counts);
        Py_END_ALLOW_THREADS
    }
    release_all(&b);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "bounds_step: a label beyond the centres");
        return NULL;
    }
    return PyLong_FromSsize_t(moved);
}

/* ---------------------------------------------------------------------------------------------
 * histogram(code, h, w, itemsize, pa, pw, out, n_codes): adds np.bincount(code) to out[0] and
 * np.bincount(code, weights=pa) to out[1] (float64 (2, n_codes)); codes uint8 or uint16, pa
 * float64 (h, pw) with pw 1 (one area per row) or w. The sums are added in pixel order, as
 * bincount adds them.
 * ------------------------------------------------------------------------------------------- */
static PyObject *histogram(PyObject *self, PyObject *args) {
    PyObject *o_code, *o_pa, *o_out;
    Py_ssize_t h, w, isz, pw, nc;
    if (!PyArg_ParseTuple(args, "OnnnOnOn", &o_code, &h, &w, &isz, &o_pa, &pw, &o_out, &nc)) return NULL;
    if ((isz != 1 && isz != 2) || (pw != 1 && pw != w) || nc < 1) {
        PyErr_SetString(PyExc_ValueError, "histogram: uint8 or uint16 codes, areas per row or per pixel");
        return NULL;
    }
    Buffers b = {.n = 0};
    const void *code = get(&b, o_code, h * w * isz, 0, "code");
    const double *pa = code ? get(&b, o_pa, h * pw * 8, 0, "pa") : NULL;
    double *out = pa ? get(&b, o_out, 2 * nc * 8, 1, "out") : NULL;
    if (!out) {
        release_all(&b);
        return NULL;
    }
    int64_t *cnt = calloc((size_t)nc, sizeof(int64_t));
    double *acc = calloc((size_t)nc, sizeof(double));
    if (!cnt || !acc) {
        free(cnt), free(acc);
        release_all(&b);
        return PyErr_NoMemory();
    }
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < h && !bad; r++) {
        const double *pr = pa + r * pw;
        for (Py_ssize_t c = 0; c < w; c++) {
            Py_ssize_t k = isz == 1 ? ((const uint8_t *)code)[r * w + c] : ((const uint16_t *)code)[r * w + c];
            if (k >= nc) {
                bad = 1;
                break;
            }
            cnt[k] += 1;
            acc[k] += pw == 1 ? pr[0] : pr[c];
        }
    }
    if (!bad) {
        for (Py_ssize_t k = 0; k < nc; k++) {
            out[k] += (double)cnt[k];
            out[nc + k] += acc[k];
        }
    }
    Py_END_ALLOW_THREADS
    free(cnt), free(acc);
    release_all(&b);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "histogram: a code beyond the number of codes");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------
 * regions(classes, water, pa, h, w, pw): rs_change.waterbody._measure of one strip in two passes.
 * The 4-connected regions of classes != 0 are numbered 1.. in raster order of their first pixel
 * (scipy.ndimage.label's order), then each region's sums are added pixel by pixel in raster order
 * (as numpy's bincount adds them): row k - 1 of the float64 (k, 2 + 3 * n) result holds the
 * pixels, the area of its classes == 2 pixels, then per water mask the area of its pixels that
 * are 1 (water), 0 (land) and anything else (unobserved). Returned as bytes (numpy.frombuffer).
 * ------------------------------------------------------------------------------------------- */
static int32_t uf_find(int32_t *parent, int32_t a) {
    while (parent[a] != a) {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    return a;
}

/* The 4-connected regions of the pixels where msk != 0 and, when val is not NULL, of one value of
 * val: lab (h * w) gets 0 outside them and 1.. numbered in raster order of each region's first
 * pixel (scipy.ndimage.label's order). Returns the number of regions, -1 when out of memory. Two
 * passes: provisional labels joined (union-find) where a pixel's left and upper neighbours differ,
 * then each region's number at its first pixel. No Python calls: runs without the GIL. */
static Py_ssize_t label4(const uint8_t *val, const uint8_t *msk, Py_ssize_t h, Py_ssize_t w, int32_t *lab) {
    Py_ssize_t cap = 1024, nl = 0, k = 0;
    int32_t *parent = malloc((size_t)cap * sizeof(int32_t));
    if (!parent) return -1;
    parent[0] = 0;
    for (Py_ssize_t r = 0; r < h; r++) {
        for (Py_ssize_t c = 0; c < w; c++) {
            Py_ssize_t i = r * w + c;
            if (!msk[i]) {
                lab[i] = 0;
                continue;
            }
            int32_t left = c > 0 && (!val || val[i - 1] == val[i]) ? lab[i - 1] : 0;
            int32_t up = r > 0 && (!val || val[i - w] == val[i]) ? lab[i - w] : 0;
            if (!left && !up) {
                if (++nl >= cap) {
                    int32_t *grown = nl < INT32_MAX ? realloc(parent, (size_t)(cap * 2) * sizeof(int32_t)) : NULL;
                    if (!grown) {
                        free(parent);
                        return -1;
                    }
                    parent = grown, cap *= 2;
                }
                parent[nl] = (int32_t)nl;
                lab[i] = (int32_t)nl;
            } else if (left && up && left != up) {
                int32_t a = uf_find(parent, left), bb = uf_find(parent, up);
                if (a != bb) parent[a > bb ? a : bb] = a < bb ? a : bb;
                lab[i] = left;
            } else {
                lab[i] = left ? left : up;
            }
        }
    }
    int32_t *final = calloc((size_t)(nl + 1), sizeof(int32_t));
    if (!final) {
        free(parent);
        return -1;
    }
    for (Py_ssize_t i = 0; i < h * w; i++) {
        if (lab[i]) {
            int32_t root = uf_find(parent, lab[i]);
            if (!final[root]) final[root] = (int32_t)++k;
            lab[i] = final[root];
        }
    }
    free(final);
    free(parent);
    return k;
}

static PyObject *regions(PyObject *self, PyObject *args) {
    PyObject *o_cls, *o_water, *o_pa;
    Py_ssize_t h, w, pw;
    if (!PyArg_ParseTuple(args, "OOOnnn", &o_cls, &o_water, &o_pa, &h, &w, &pw)) return NULL;
    Py_ssize_t n = PySequence_Size(o_water);
    if (n < 0) return NULL;
    if (n > MAX_BUFFERS - 2 || (pw != 1 && pw != w) || h < 0 || w < 0) {
        PyErr_SetString(PyExc_ValueError, "regions: too many masks, or areas neither per row nor per pixel");
        return NULL;
    }
    Buffers b = {.n = 0};
    const uint8_t *cls = get(&b, o_cls, h * w, 0, "classes");
    const double *pa = cls ? get(&b, o_pa, h * pw * 8, 0, "pa") : NULL;
    const uint8_t *water[MAX_BUFFERS];
    for (Py_ssize_t i = 0; pa && i < n; i++) {
        PyObject *item = PySequence_GetItem(o_water, i);
        water[i] = item ? get(&b, item, h * w, 0, "water") : NULL;
        Py_XDECREF(item);
        if (!water[i]) pa = NULL;
    }
    if (!pa) {
        release_all(&b);
        return NULL;
    }
    Py_ssize_t k = 0, m = 2 + 3 * n;
    int32_t *lab = malloc((size_t)(h * w > 0 ? h * w : 1) * sizeof(int32_t));
    int failed = !lab;
    Py_BEGIN_ALLOW_THREADS
    if (!failed) k = label4(NULL, cls, h, w, lab);
    if (k < 0) failed = 1;
    Py_END_ALLOW_THREADS
    PyObject *res = failed ? NULL : PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(k * m * 8 > 0 ? k * m * 8 : 0));
    if (res) {
        double *out = (double *)PyBytes_AS_STRING(res);
        Py_BEGIN_ALLOW_THREADS
        memset(out, 0, (size_t)(k * m) * sizeof(double));
        /* pass 3: the sums, pixel by pixel in raster order */
        for (Py_ssize_t r = 0; r < h; r++) {
            const double *pr = pa + r * pw;
            for (Py_ssize_t c = 0; c < w; c++) {
                Py_ssize_t i = r * w + c;
                if (!lab[i]) continue;
                double *o = out + (Py_ssize_t)(lab[i] - 1) * m, a = pw == 1 ? pr[0] : pr[c];
                o[0] += 1.0;
                if (cls[i] == 2) o[1] += a;
                for (Py_ssize_t d = 0; d < n; d++) {
                    uint8_t v = water[d][i];
                    o[2 + 3 * d + (v == 1 ? 0 : v == 0 ? 1 : 2)] += a;
                }
            }
        }
        Py_END_ALLOW_THREADS
    } else if (failed) {
        PyErr_NoMemory();
    }
    free(lab);
    release_all(&b);
    return res;
}

/* ---------------------------------------------------------------------------------------------
 * outlines(img, msk, h, w, x0, y0, scratch): the polygons of GDALPolygonize (GDAL 3.7+) for the 4-connected
 * regions of one value of img (uint8) where msk != 0, vertex for vertex (strips._polygonize).
 * Every ring keeps its region on its left in pixel coordinates (rows down): an exterior starts at
 * its top-left vertex going down, a hole at its top-left vertex going right; only the corners are
 * vertices, and at a vertex where two pixels of the region meet only diagonally the ring turns so
 * that they stay joined (a pinched part becomes a hole touching the exterior at that vertex, as
 * GDAL writes it). Rings are found in raster order of their top-left vertex: the first edge of a
 * ring met scanning the grid's horizontal edges row by row is its top-most, left-most one; with
 * the region below it the ring is the region's exterior, above it a hole.
 * Returns (coords, rings) as bytes: float64 (n, 2) vertices (x + x0, y + y0), each ring closed by
 * its first vertex, and int64 (r, 2) [region 1.., vertices] per ring in the order found.
 * ------------------------------------------------------------------------------------------- */
typedef struct {
    double *xy;
    Py_ssize_t n, cap;
    int64_t *ring;
    Py_ssize_t nr, rcap;
} Outlines;

static int put_vertex(Outlines *o, Py_ssize_t x, Py_ssize_t y) {
    if (o->n >= o->cap) {
        Py_ssize_t cap = o->cap ? o->cap * 2 : 4096;
        double *g = realloc(o->xy, (size_t)cap * 2 * sizeof(double));
        if (!g) return -1;
        o->xy = g, o->cap = cap;
    }
    o->xy[2 * o->n] = (double)x, o->xy[2 * o->n + 1] = (double)y;
    o->n++;
    return 0;
}

/* the ring of region L from vertex (sx, sy) in direction sd (0 right, 1 down, 2 left, 3 up);
 * marks its horizontal edges in seen (bit 1: top edge of the pixel below, 2: bottom edge of the
 * pixel above) */
static int walk_ring(const int32_t *lab, uint8_t *seen, Py_ssize_t h, Py_ssize_t w, int32_t L, Py_ssize_t sx,
                     Py_ssize_t sy, int sd, Py_ssize_t x0, Py_ssize_t y0, Outlines *o) {
    static const int dx[4] = {1, 0, -1, 0}, dy[4] = {0, 1, 0, -1};
    /* pixel offsets (row, col) from the vertex of the pixel ahead-left and ahead-right, per direction */
    static const int fl_r[4] = {-1, 0, 0, -1}, fl_c[4] = {0, 0, -1, -1};
    static const int fr_r[4] = {0, 0, -1, -1}, fr_c[4] = {0, -1, -1, 0};
    Py_ssize_t start = o->n, vx = sx, vy = sy;
    int d = sd;
    if (put_vertex(o, sx + x0, sy + y0) < 0) return -1;
    for (;;) {
        if (d == 0) seen[(vy - 1) * w + vx] |= 2;
        else if (d == 2) seen[vy * w + vx - 1] |= 1;
        vx += dx[d], vy += dy[d];
        if (vx == sx && vy == sy) break;
        Py_ssize_t r = vy + fr_r[d], c = vx + fr_c[d];
        int nd;
        if (r >= 0 && r < h && c >= 0 && c < w && lab[r * w + c] == L) {
            nd = (d + 1) & 3;
        } else {
            r = vy + fl_r[d], c = vx + fl_c[d];
            nd = r >= 0 && r < h && c >= 0 && c < w && lab[r * w + c] == L ? d : (d + 3) & 3;
        }
        if (nd != d && put_vertex(o, vx + x0, vy + y0) < 0) return -1;
        d = nd;
    }
    if (put_vertex(o, sx + x0, sy + y0) < 0) return -1;
    if (o->nr >= o->rcap) {
        Py_ssize_t cap = o->rcap ? o->rcap * 2 : 1024;
        int64_t *g = realloc(o->ring, (size_t)cap * 2 * sizeof(int64_t));
        if (!g) return -1;
        o->ring = g, o->rcap = cap;
    }
    o->ring[2 * o->nr] = L, o->ring[2 * o->nr + 1] = o->n - start;
    o->nr++;
    return 0;
}

static PyObject *outlines(PyObject *self, PyObject *args) {
    PyObject *o_img, *o_msk, *o_scratch;
    Py_ssize_t h, w, x0, y0;
    if (!PyArg_ParseTuple(args, "OOnnnnO", &o_img, &o_msk, &h, &w, &x0, &y0, &o_scratch)) return NULL;
    if (h < 0 || w < 0) {
        PyErr_SetString(PyExc_ValueError, "outlines: negative shape");
        return NULL;
    }
    Buffers b = {.n = 0};
    const uint8_t *img = get(&b, o_img, h * w, 0, "img");
    const uint8_t *msk = img ? get(&b, o_msk, h * w, 0, "msk") : NULL;
    /* the labels (int32) and edge marks (uint8) in the caller's scratch buffer when it gives one
     * (rs_change.kernels.outlines_scratch: one memory map shared by a strip's rasters, never from
     * the heap), else in memory of their own */
    uint8_t *scratch = msk && o_scratch != Py_None ? get(&b, o_scratch, 5 * h * w, 1, "scratch") : NULL;
    if (!msk || (o_scratch != Py_None && !scratch)) {
        release_all(&b);
        return NULL;
    }
    int32_t *lab = scratch ? (int32_t *)scratch : malloc((size_t)(h * w > 0 ? h * w : 1) * sizeof(int32_t));
    uint8_t *seen = scratch ? scratch + 4 * h * w : calloc((size_t)(h * w > 0 ? h * w : 1), 1);
    if (scratch && ((uintptr_t)scratch % sizeof(int32_t))) {
        release_all(&b);
        PyErr_SetString(PyExc_ValueError, "outlines: scratch buffer not aligned to 4 bytes");
        return NULL;
    }
    Outlines o = {NULL, 0, 0, NULL, 0, 0};
    int failed = !lab || !seen;
    Py_BEGIN_ALLOW_THREADS
    if (!failed && scratch) memset(seen, 0, (size_t)(h * w));
    if (!failed && label4(img, msk, h, w, lab) < 0) failed = 1;
    for (Py_ssize_t y = 0; y <= h && !failed; y++) {
        const int32_t *above = y > 0 ? lab + (y - 1) * w : NULL, *below = y < h ? lab + y * w : NULL;
        for (Py_ssize_t x = 0; x < w; x++) {
            int32_t a = above ? above[x] : 0, bl = below ? below[x] : 0;
            if (a == bl) continue;
            if (a && !(seen[(y - 1) * w + x] & 2) && walk_ring(lab, seen, h, w, a, x, y, 0, x0, y0, &o) < 0) {
                failed = 1;
                break;
            }
            if (bl && !(seen[y * w + x] & 1) && walk_ring(lab, seen, h, w, bl, x, y, 1, x0, y0, &o) < 0) {
                failed = 1;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (!scratch) free(lab), free(seen);
    release_all(&b);
    PyObject *res = NULL;
    if (failed) {
        PyErr_NoMemory();
    } else {
        res = Py_BuildValue("(y#y#)", (const char *)o.xy, (Py_ssize_t)(o.n * 2 * (Py_ssize_t)sizeof(double)),
                            (const char *)o.ring, (Py_ssize_t)(o.nr * 2 * (Py_ssize_t)sizeof(int64_t)));
    }
    free(o.xy), free(o.ring);
    return res;
}

static PyMethodDef methods[] = {
    {"lerp_u8", lerp_u8, METH_VARARGS, "bilinear shift of uint8 bands (readers._lerp_strips)"},
    {"any_all_nodata", any_all_nodata, METH_VARARGS, "some pixel with every band == nodata"},
    {"classify_u8", classify_u8, METH_VARARGS, "observed mask, cluster ids and water of 8-bit bands"},
    {"histogram", histogram, METH_VARARGS, "joint-state histogram (counts and area sums)"},
    {"nearest_rows", nearest_rows, METH_VARARGS, "nearest (and second nearest) centre of points given as columns"},
    {"bounds_step", bounds_step, METH_VARARGS, "one iteration of k-means' Hamerly bounds (kmeans_ops._bounds_step)"},
    {"regions", regions, METH_VARARGS, "4-connected regions of a strip and their area sums (waterbody._measure)"},
    {"outlines", outlines, METH_VARARGS, "GDALPolygonize's rings of the 4-connected regions of a uint8 strip"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "Compiled pixel loops of pass 2.", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && (PyModule_AddIntConstant(m, "MAX_BANDS", MAX_BANDS) < 0 ||
                      PyModule_AddIntConstant(m, "MAX_MASKS", MAX_BUFFERS - 2) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
