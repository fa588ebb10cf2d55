/* The explorer's compiled kernels: the visited set's hash table (checker/hashset.py) and
 * the graph algorithms of liveness (checker/digraph.py).  Built by pip from this file
 * (setup.py); the Python modules named above document what each function computes and
 * check every array's type and length before calling in, so the C side trusts them.
 *
 * Arrays arrive through the buffer protocol (numpy arrays, C-contiguous); every function
 * releases the GIL while it works, so the explorer's threads run them in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define EMPTY (-1)

static const uint64_t M1 = 0x9E3779B97F4A7C15ull;
static const uint64_t M2 = 0xBF58476D1CE4E5B9ull;
static const uint64_t M3 = 0x94D049BB133111EBull;

/* One slot of the hash table: the key and the store index (or pending entry) of its
 * state, packed in 12 bytes so that a probe touches one cache line (mostly). */
#pragma pack(push, 4)
typedef struct {
    uint64_t key;
    int32_t idx;
} Slot;
#pragma pack(pop)

#define PREFETCH_AHEAD 12

static inline uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 30)) * M2;
    x = (x ^ (x >> 27)) * M3;
    return x ^ (x >> 31);
}

/* A key's hash: its top bits pick the shard, its low bits the slot. */
static inline uint64_t slot_hash(uint64_t key) { return mix(key * M1); }

/* ------------------------------------------------------------------ buffers */
typedef struct {
    Py_buffer view[12];
    int n;
} Buffers;

static void release(Buffers *b) {
    for (int i = 0; i < b->n; i++) PyBuffer_Release(&b->view[i]);
    b->n = 0;
}

/* The data of `obj` as a C-contiguous buffer of `itemsize`-byte items; NULL on error. */
static void *take(Buffers *b, PyObject *obj, Py_ssize_t itemsize, int writable, Py_ssize_t *len) {
    Py_buffer *v = &b->view[b->n];
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0) return NULL;
    b->n++;
    if (v->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "expected items of %zd bytes, got %zd", itemsize, v->itemsize);
        return NULL;
    }
    if (len) *len = v->len / itemsize;
    return v->buf;
}

#define TAKE(var, type, obj, writable, lenp)                                  \
    type *var = (type *)take(&bufs, obj, sizeof(type), writable, lenp);      \
    if (!var) goto fail;

/* ------------------------------------------------------------------ hash table */

static PyObject *keys_of(PyObject *self, PyObject *args) {
    PyObject *o_rows, *o_out;
    Py_ssize_t words, n;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OnO", &o_rows, &words, &o_out)) return NULL;
    TAKE(rows, uint64_t, o_rows, 0, NULL);
    TAKE(out, uint64_t, o_out, 1, &n);
    Py_BEGIN_ALLOW_THREADS
    if (words == 1) {
        memcpy(out, rows, (size_t)n * sizeof *out);
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t h = 0;
            for (Py_ssize_t w = 0; w < words; w++) h = mix(rows[i * words + w] ^ (h * M1 + (uint64_t)(w + 1)));
            out[i] = h;
        }
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

static inline int same(const uint64_t *a, const uint64_t *b, Py_ssize_t words) {
    for (Py_ssize_t w = 0; w < words; w++)
        if (a[w] != b[w]) return 0;
    return 1;
}

/* The candidates of one shard are probed in order; the slots of the next PREFETCH_AHEAD of
 * them are fetched meanwhile.  Hashes are computed here (each shard's thread hashes every
 * key to find its own) rather than kept in an array of the batch: the multiplications cost
 * less than the memory. */
static PyObject *probe_shard(PyObject *self, PyObject *args) {
    PyObject *o_table, *o_keys, *o_cand, *o_stored, *o_parents, *o_out, *o_slot;
    Py_ssize_t words, shard, shift, start, room, cap, n, nparents, nstored;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOOOOnnnnnOO", &o_table, &o_keys, &o_cand, &o_stored, &o_parents, &words,
                          &shard, &shift, &start, &room, &o_out, &o_slot))
        return NULL;
    TAKE(table, Slot, o_table, 1, &cap);
    TAKE(keys, uint64_t, o_keys, 0, &n);
    TAKE(cand, uint64_t, o_cand, 0, NULL);
    TAKE(stored, uint64_t, o_stored, 0, &nstored);
    TAKE(parents, int64_t, o_parents, 0, &nparents);
    TAKE(out, int64_t, o_out, 1, NULL);
    TAKE(slot_of, int64_t, o_slot, 1, NULL);
    Py_ssize_t i = start, nnew = 0, collisions = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint64_t mask = (uint64_t)cap - 1;
    const int single = shift >= 64;
    const int exact = words == 1;
    nstored /= words;
    /* ring[q]: the next own candidates (index and hash), their slots being fetched */
    Py_ssize_t ring_i[PREFETCH_AHEAD];
    uint64_t ring_h[PREFETCH_AHEAD];
    int head = 0, count = 0;
    Py_ssize_t scan = i;
    for (;;) {
        while (count < PREFETCH_AHEAD && scan < n) {
            uint64_t h = slot_hash(keys[scan]);
            if (single || (h >> shift) == (uint64_t)shard) {
                int64_t p = nparents ? parents[scan] : -1;
                if (p >= 0 && p < nstored && same(cand + scan * words, stored + p * words, words)) {
                    /* a step that leaves the state unchanged lands on its parent: no probe
                     * (and no prefetch).  Done again, to the same effect, if the shard
                     * stops to grow before it reaches this candidate. */
                    out[scan] = p;
                } else {
                    /* a slot may straddle two cache lines, and the probe goes on to the
                     * next slots: the line after is fetched too */
                    const char *at = (const char *)&table[h & mask];
                    __builtin_prefetch(at, 1, 1);
                    __builtin_prefetch(at + 32, 1, 1);
                    int q = (head + count) % PREFETCH_AHEAD;
                    ring_i[q] = scan, ring_h[q] = h;
                    count++;
                }
            }
            scan++;
        }
        if (count == 0) {
            i = n;
            break;
        }
        i = ring_i[head];
        uint64_t h = ring_h[head];
        if (nnew >= room) break; /* i is the next candidate to probe, once the shard grew */
        head = (head + 1) % PREFETCH_AHEAD, count--;
        uint64_t k = keys[i], s = h & mask;
        for (;;) {
            int64_t j = table[s].idx;
            if (j == EMPTY) {
                table[s].key = k;
                table[s].idx = (int32_t)(-2 - i);
                out[i] = -2 - i;
                slot_of[i] = (int64_t)s;
                nnew++;
                break;
            }
            if (table[s].key == k) {
                if (exact) { out[i] = j; break; }
                const uint64_t *other = j >= 0 ? stored + j * words : cand + (-2 - j) * words;
                if (same(cand + i * words, other, words)) { out[i] = j; break; }
                collisions++;
            }
            s = (s + 1) & mask;
        }
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    return Py_BuildValue("nnn", i, nnew, collisions);
fail:
    release(&bufs);
    return NULL;
}

static PyObject *number_new(PyObject *self, PyObject *args) {
    PyObject *o_out, *o_new;
    Py_ssize_t base, g, k = 0;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OnO", &o_out, &base, &o_new)) return NULL;
    TAKE(out, int64_t, o_out, 1, &g);
    TAKE(newc, int64_t, o_new, 1, NULL);
    Py_BEGIN_ALLOW_THREADS
    /* in candidate order: a new state gets the next number; a repeat of a state new in
     * this batch takes the number of its first candidate (earlier, so already set) */
    for (Py_ssize_t i = 0; i < g; i++) {
        int64_t j = out[i];
        if (j == -2 - i) {
            out[i] = base + k;
            newc[k++] = i;
        } else if (j < 0) {
            out[i] = out[-2 - j];
        }
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    return PyLong_FromSsize_t(k);
fail:
    release(&bufs);
    return NULL;
}

/* A new state's place in the table, for renumber_slots: its slot and its shard. */
#define SHARD_BITS 8
#define WHERE(slot, shard) (((slot) << SHARD_BITS) | (shard))

static PyObject *settle(PyObject *self, PyObject *args) {
    PyObject *o_table, *o_slot, *o_keys, *o_new, *o_out, *o_where;
    Py_ssize_t shard, shift, m;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOOnnOOO", &o_table, &o_slot, &o_keys, &shard, &shift, &o_new, &o_out, &o_where))
        return NULL;
    TAKE(table, Slot, o_table, 1, NULL);
    TAKE(slot_of, int64_t, o_slot, 0, NULL);
    TAKE(keys, uint64_t, o_keys, 0, NULL);
    TAKE(newc, int64_t, o_new, 0, &m);
    TAKE(out, int64_t, o_out, 0, NULL);
    TAKE(where, int64_t, o_where, 1, NULL);
    Py_BEGIN_ALLOW_THREADS
    const int single = shift >= 64;
    for (Py_ssize_t q = 0; q < m; q++) {
        int64_t i = newc[q];
        if (!single && (slot_hash(keys[i]) >> shift) != (uint64_t)shard) continue;
        table[slot_of[i]].idx = (int32_t)out[i];
        where[q] = WHERE(slot_of[i], shard); /* each shard writes only its own entries */
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

static PyObject *rehash(PyObject *self, PyObject *args) {
    PyObject *o_old, *o_new, *o_slot;
    Py_ssize_t cap, ncap;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOO", &o_old, &o_new, &o_slot)) return NULL;
    TAKE(old, Slot, o_old, 0, &cap);
    TAKE(nt, Slot, o_new, 1, &ncap);
    TAKE(slot_of, int64_t, o_slot, 1, NULL);
    Py_BEGIN_ALLOW_THREADS
    const uint64_t mask = (uint64_t)ncap - 1;
    for (Py_ssize_t s = 0; s < cap; s++) {
        if (old[s].idx == EMPTY) continue;
        uint64_t t = slot_hash(old[s].key) & mask;
        while (nt[t].idx != EMPTY) t = (t + 1) & mask;
        nt[t] = old[s];
        if (old[s].idx <= -2) slot_of[-2 - (int64_t)old[s].idx] = (int64_t)t; /* pending: it moved */
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

static PyObject *renumber_table(PyObject *self, PyObject *args) {
    PyObject *o_table, *o_moved;
    Py_ssize_t base, cap, k;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OnO", &o_table, &base, &o_moved)) return NULL;
    TAKE(table, Slot, o_table, 1, &cap);
    TAKE(moved, int64_t, o_moved, 0, &k);
    Py_BEGIN_ALLOW_THREADS
    /* one pass over the slots: an entry of the renumbered block follows its state */
    for (Py_ssize_t s = 0; s < cap; s++) {
        int64_t j = table[s].idx;
        if (j >= base && j - base < k) table[s].idx = (int32_t)(base + moved[j - base]);
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

/* The same for a block whose slots settle() recorded: only the block's own slots are
 * visited (one random write per state of the block, instead of a pass over the table). */
static PyObject *renumber_slots(PyObject *self, PyObject *args) {
    PyObject *o_table, *o_moved, *o_where;
    Py_ssize_t base, shard, cap, k;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OnOOn", &o_table, &base, &o_moved, &o_where, &shard)) return NULL;
    TAKE(table, Slot, o_table, 1, &cap);
    TAKE(moved, int64_t, o_moved, 0, &k);
    TAKE(where, int64_t, o_where, 0, NULL);
    Py_BEGIN_ALLOW_THREADS
    const int64_t mine = shard, low = (1 << SHARD_BITS) - 1;
    const uint64_t mask = (uint64_t)cap - 1;
    for (Py_ssize_t q = 0; q < k; q++) {
        if (q + PREFETCH_AHEAD < k) __builtin_prefetch(&table[((uint64_t)where[q + PREFETCH_AHEAD] >> SHARD_BITS) & mask], 1, 1);
        if ((where[q] & low) == mine) table[where[q] >> SHARD_BITS].idx = (int32_t)(base + moved[q]);
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

/* ------------------------------------------------------------------ graphs */

static PyObject *count_out(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_src, *o_dst;
    Py_ssize_t e;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOO", &o_indptr, &o_src, &o_dst)) return NULL;
    TAKE(indptr, int64_t, o_indptr, 1, NULL);
    TAKE(src, int32_t, o_src, 0, &e);
    TAKE(dst, int32_t, o_dst, 0, NULL);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < e; k++)
        if (src[k] != dst[k]) indptr[src[k] + 1]++;
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

static PyObject *fill_out(PyObject *self, PyObject *args) {
    PyObject *o_fill, *o_col, *o_eact, *o_src, *o_dst, *o_act;
    Py_ssize_t e;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOOOOO", &o_fill, &o_col, &o_eact, &o_src, &o_dst, &o_act)) return NULL;
    TAKE(fill, int64_t, o_fill, 1, NULL);
    TAKE(col, int32_t, o_col, 1, NULL);
    TAKE(eact, int32_t, o_eact, 1, NULL);
    TAKE(src, int32_t, o_src, 0, &e);
    TAKE(dst, int32_t, o_dst, 0, NULL);
    TAKE(act, int32_t, o_act, 0, NULL);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < e; k++) {
        int32_t s = src[k];
        if (s == dst[k]) continue;
        int64_t at = fill[s]++;
        col[at] = dst[k];
        eact[at] = act[k];
    }
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

static PyObject *enabled_groups(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_eact, *o_amask, *o_en;
    Py_ssize_t words, np1;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOOnO", &o_indptr, &o_eact, &o_amask, &words, &o_en)) return NULL;
    TAKE(indptr, int64_t, o_indptr, 0, &np1);
    TAKE(eact, int32_t, o_eact, 0, NULL);
    TAKE(amask, uint64_t, o_amask, 0, NULL);
    TAKE(en, uint64_t, o_en, 1, NULL);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s + 1 < np1; s++)
        for (int64_t e = indptr[s]; e < indptr[s + 1]; e++)
            for (Py_ssize_t w = 0; w < words; w++) en[s * words + w] |= amask[(Py_ssize_t)eact[e] * words + w];
    Py_END_ALLOW_THREADS
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

/* ------------------------------------------------------------------ state lists */

/* A growable list of states (int32), for the per-level lists of the graph passes. */
typedef struct {
    int32_t *a;
    Py_ssize_t n, cap;
} List;

static int list_reserve(List *l, Py_ssize_t cap) {
    if (cap <= l->cap) return 0;
    Py_ssize_t c = l->cap ? l->cap : 1024;
    while (c < cap) c *= 2;
    int32_t *a = realloc(l->a, sizeof(int32_t) * (size_t)c);
    if (!a) return -1;
    l->a = a, l->cap = c;
    return 0;
}

static inline int list_push(List *l, int32_t x) {
    if (l->n == l->cap && list_reserve(l, l->n + 1) < 0) return -1;
    l->a[l->n++] = x;
    return 0;
}

/* Sort `m` states (0 <= x < 2^31) in place: insertion sort when few, else an LSD radix
 * sort by 16-bit digits through `tmp` (room for `m`) and `count` (65,537 entries). */
static void sort_states(int32_t *a, int32_t *tmp, Py_ssize_t *count, Py_ssize_t m) {
    if (m < 1024) {
        for (Py_ssize_t i = 1; i < m; i++) {
            int32_t x = a[i];
            Py_ssize_t j = i;
            while (j > 0 && a[j - 1] > x) a[j] = a[j - 1], j--;
            a[j] = x;
        }
        return;
    }
    int32_t top = 0;
    for (Py_ssize_t i = 0; i < m; i++) top |= a[i];
    for (int shift = 0; shift < 31 && (top >> shift); shift += 16) {
        memset(count, 0, sizeof(Py_ssize_t) * 65537);
        for (Py_ssize_t i = 0; i < m; i++) count[((uint32_t)a[i] >> shift & 0xffff) + 1]++;
        for (int d = 0; d < 65536; d++) count[d + 1] += count[d];
        for (Py_ssize_t i = 0; i < m; i++) tmp[count[(uint32_t)a[i] >> shift & 0xffff]++] = a[i];
        memcpy(a, tmp, sizeof(int32_t) * (size_t)m);
    }
}

/* Breadth-first search from `sources` (in their order) through `allowed` states, each
 * state's successors taken in increasing order: the visit order of a FIFO queue.
 *
 * Run level by level rather than with the queue: the queue's order follows the first
 * predecessor of each state, so reading the rows in it jumps through memory for every
 * state (at 66M states, 6 of a 7 s search).  Each level is read in state order instead, and
 * its queue order is kept as each state's position: a state of the next level records the
 * smallest position among its predecessors (the one a queue would meet first), and the
 * next level's queue order is its states sorted by (that position, state), which is the
 * order the queue appends them.  Distances and predecessors are those of the queue.
 *
 * During a level, dist holds -3 - position for its states and -2 for states outside
 * `allowed` (so one array answers "seen?"); both are put back at the end. */
static PyObject *bfs(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_col, *o_sources, *o_allowed, *o_dist, *o_pred;
    Py_ssize_t np1, nsrc;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOOOOO", &o_indptr, &o_col, &o_sources, &o_allowed, &o_dist, &o_pred))
        return NULL;
    TAKE(indptr, int64_t, o_indptr, 0, &np1);
    TAKE(col, int32_t, o_col, 0, NULL);
    TAKE(sources, int64_t, o_sources, 0, &nsrc);
    TAKE(allowed, uint8_t, o_allowed, 0, NULL);
    TAKE(dist, int32_t, o_dist, 1, NULL);
    TAKE(pred, int32_t, o_pred, 1, NULL);
    Py_ssize_t n = np1 - 1;
    /* queue: the level in queue order; sorted: the same in state order; found: the next
       level as found; tmp: sorting room */
    List queue = {0}, sorted = {0}, found = {0}, tmp = {0};
    Py_ssize_t *count = malloc(sizeof(Py_ssize_t) * 65537), *at = NULL, at_room = 0;
    int bad = count == NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < n; s++)
        if (!allowed[s]) dist[s] = -2;
    for (Py_ssize_t q = 0; q < nsrc && !bad; q++) {
        int64_t s = sources[q];
        if (dist[s] != -1) continue;
        dist[s] = (int32_t)(-3 - queue.n);
        bad = list_push(&queue, (int32_t)s) < 0 || list_push(&sorted, (int32_t)s) < 0;
    }
    if (!bad && list_reserve(&tmp, sorted.n) == 0) sort_states(sorted.a, tmp.a, count, sorted.n);
    else bad = 1;
    for (int32_t d = 0; queue.n && !bad; d++) {
        found.n = 0;
        for (Py_ssize_t i = 0; i < sorted.n && !bad; i++) {
            int32_t u = sorted.a[i], pos = -3 - dist[u];  /* u's place in the queue */
            for (int64_t e = indptr[u]; e < indptr[u + 1]; e++) {
                int32_t v = col[e];
                if (dist[v] == -1) {
                    dist[v] = d + 1;
                    pred[v] = pos;  /* a position in this level's queue order, for now */
                    if (list_push(&found, v) < 0) { bad = 1; break; }
                } else if (dist[v] == d + 1 && pos < pred[v]) {
                    pred[v] = pos;
                }
            }
        }
        for (Py_ssize_t i = 0; i < sorted.n; i++) dist[sorted.a[i]] = d;
        if (bad || list_reserve(&tmp, found.n) < 0) { bad = 1; break; }
        /* the next level: in state order, then (stable, by counting) in queue order */
        sort_states(found.a, tmp.a, count, found.n);
        if (queue.n + 1 > at_room) {  /* the counts, one per state of this level */
            Py_ssize_t *grown = realloc(at, sizeof(Py_ssize_t) * (size_t)(queue.n + 1));
            if (!grown) { bad = 1; break; }
            at = grown, at_room = queue.n + 1;
        }
        memset(at, 0, sizeof(Py_ssize_t) * (size_t)(queue.n + 1));
        for (Py_ssize_t i = 0; i < found.n; i++) at[pred[found.a[i]] + 1]++;
        for (Py_ssize_t k = 0; k < queue.n; k++) at[k + 1] += at[k];
        for (Py_ssize_t i = 0; i < found.n; i++) tmp.a[at[pred[found.a[i]]]++] = found.a[i];
        for (Py_ssize_t i = 0; i < found.n; i++) {
            int32_t v = tmp.a[i];
            pred[v] = queue.a[pred[v]];
            dist[v] = (int32_t)(-3 - i);
        }
        /* tmp (queue order) becomes the queue, found (state order) the sorted level */
        List t = queue;
        queue = tmp, queue.n = found.n;
        tmp = t;
        t = sorted, sorted = found, found = t;
    }
    for (Py_ssize_t s = 0; s < n; s++)
        if (dist[s] == -2) dist[s] = -1;
    Py_END_ALLOW_THREADS
    free(queue.a), free(sorted.a), free(found.a), free(tmp.a), free(count), free(at);
    release(&bufs);
    if (bad) return PyErr_NoMemory();
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

/* Peel state u of the topological peel (below): mark it, take its inside edges off their
 * targets' counts, and list each target so freed whose number is below `behind`.  Returns
 * -1 when the list cannot grow. */
static int peel_state(int32_t u, const int64_t *indptr, const int32_t *col, const uint8_t *inside,
                      int32_t *indeg, List *freed, int64_t behind) {
    indeg[u] = -1;
    for (int64_t e = indptr[u]; e < indptr[u + 1]; e++) {
        int32_t v = col[e];
        if (inside[v] && --indeg[v] == 0 && v < behind && list_push(freed, v) < 0) return -1;
    }
    return 0;
}

/* Strongly connected components of the subgraph induced by `inside`, numbered only where
 * they hold a cycle (two states or more, or a self-loop); every other state gets -1.
 *
 * First a topological peel (Kahn's algorithm): a state no remaining inside edge enters
 * is on no cycle, and neither is what only it leads to.  The peel reads the rows in the
 * order they are stored, round after round, so it is cheap even on a graph of tens of
 * millions of states, and on an acyclic region (the usual case: a migration moves forward)
 * it is all the work there is.  Tarjan's algorithm then runs on the states left, which
 * contain every cycle, with an explicit DFS path and a per-frame edge cursor.
 * Components are numbered in the order Tarjan completes them, counting only cyclic ones. */
static PyObject *components(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_col, *o_inside, *o_comp;
    Py_ssize_t np1;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOOO", &o_indptr, &o_col, &o_inside, &o_comp)) return NULL;
    TAKE(indptr, int64_t, o_indptr, 0, &np1);
    TAKE(col, int32_t, o_col, 0, NULL);
    TAKE(inside, uint8_t, o_inside, 0, NULL);
    TAKE(comp, int32_t, o_comp, 1, NULL);
    Py_ssize_t n = np1 - 1;
    size_t sz = (size_t)(n > 0 ? n : 1);
    /* the peel: indeg counts inside edges from states not peeled yet, -1 once peeled */
    int32_t *indeg = calloc(sz, sizeof(int32_t));
    Py_ssize_t *count = malloc(sizeof(Py_ssize_t) * 65537);
    List now = {0}, later = {0}, tmp = {0};
    int bad = !indeg || !count;
    Py_ssize_t left = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t u = 0; u < n && !bad; u++) {
        comp[u] = -1;
        if (!inside[u]) continue;
        for (int64_t e = indptr[u]; e < indptr[u + 1]; e++)
            if (inside[col[e]]) indeg[col[e]]++;
    }
    /* In rounds, each reading its states in state order (a queue's order would jump
       through memory, as in bfs): the first round sweeps every state, peeling those
       whose count is 0 and what that frees further on; a state freed behind the sweep
       waits for the next round, which reads only such states, sorted; and so on. */
    for (Py_ssize_t u = 0; u < n && !bad; u++)
        if (inside[u] && indeg[u] == 0) bad = peel_state((int32_t)u, indptr, col, inside, indeg, &later, u) < 0;
    while (later.n && !bad) {
        List t = now;
        now = later, later = t, later.n = 0;
        if (list_reserve(&tmp, now.n) < 0) { bad = 1; break; }
        sort_states(now.a, tmp.a, count, now.n);
        for (Py_ssize_t i = 0; i < now.n && !bad; i++)
            bad = peel_state(now.a[i], indptr, col, inside, indeg, &later, INT64_MAX) < 0;
    }
    /* indeg > 0 now marks exactly the states left: a peeled state is -1, and one outside
       was never counted */
    for (Py_ssize_t u = 0; u < n; u++) left += indeg[u] > 0;
    Py_END_ALLOW_THREADS
    free(now.a), free(later.a), free(tmp.a), free(count);
    if (bad) {
        free(indeg);
        PyErr_NoMemory();
        goto fail;
    }
    if (left == 0) {
        free(indeg);
        release(&bufs);
        Py_RETURN_NONE;
    }
    /* Tarjan on the states left (indeg > 0) */
    int32_t *index = malloc(sizeof(int32_t) * sz), *low = malloc(sizeof(int32_t) * sz);
    int32_t *stack = malloc(sizeof(int32_t) * sz), *call = malloc(sizeof(int32_t) * sz);
    int64_t *next = malloc(sizeof(int64_t) * sz);
    uint8_t *onstack = calloc(sz, 1);
    if (!index || !low || !stack || !call || !next || !onstack) {
        free(indeg), free(index), free(low), free(stack), free(call), free(next), free(onstack);
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t s = 0; s < n; s++) index[s] = -1;
    int32_t counter = 0, ncomp = 0;
    Py_ssize_t sp = 0;
    for (Py_ssize_t root = 0; root < n; root++) {
        if (indeg[root] <= 0 || index[root] >= 0) continue;
        Py_ssize_t depth = 0;
        call[0] = (int32_t)root;
        next[0] = indptr[root];
        index[root] = low[root] = counter++;
        stack[sp++] = (int32_t)root;
        onstack[root] = 1;
        while (depth >= 0) {
            int32_t u = call[depth];
            if (next[depth] < indptr[u + 1]) {
                int32_t v = col[next[depth]++];
                if (indeg[v] <= 0) continue;
                if (index[v] < 0) {
                    index[v] = low[v] = counter++;
                    stack[sp++] = v;
                    onstack[v] = 1;
                    depth++;
                    call[depth] = v;
                    next[depth] = indptr[v];
                } else if (onstack[v] && index[v] < low[u]) {
                    low[u] = index[v];
                }
                continue;
            }
            if (low[u] == index[u]) {
                /* a single state is a component here only with a self-loop */
                int cyclic = stack[sp - 1] != u;
                for (int64_t e = indptr[u]; !cyclic && e < indptr[u + 1]; e++) cyclic = col[e] == u;
                int32_t w;
                do {
                    w = stack[--sp];
                    onstack[w] = 0;
                    comp[w] = cyclic ? ncomp : -1;
                } while (w != u);
                ncomp += cyclic;
            }
            depth--;
            if (depth >= 0 && low[u] < low[call[depth]]) low[call[depth]] = low[u];
        }
    }
    Py_END_ALLOW_THREADS
    free(indeg), free(index), free(low), free(stack), free(call), free(next), free(onstack);
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

static PyObject *fair_components(PyObject *self, PyObject *args) {
    PyObject *o_indptr, *o_col, *o_eact, *o_comp, *o_en, *o_amask, *o_full, *o_ok;
    Py_ssize_t np1, words, ncomp;
    Buffers bufs = {.n = 0};
    if (!PyArg_ParseTuple(args, "OOOOOOOnO", &o_indptr, &o_col, &o_eact, &o_comp, &o_en, &o_amask, &o_full,
                          &words, &o_ok))
        return NULL;
    TAKE(indptr, int64_t, o_indptr, 0, &np1);
    TAKE(col, int32_t, o_col, 0, NULL);
    TAKE(eact, int32_t, o_eact, 0, NULL);
    TAKE(comp, int32_t, o_comp, 0, NULL);
    TAKE(en, uint64_t, o_en, 0, NULL);
    TAKE(amask, uint64_t, o_amask, 0, NULL);
    TAKE(full, uint64_t, o_full, 0, NULL);
    TAKE(ok, uint8_t, o_ok, 1, &ncomp);
    uint64_t *covered = calloc((size_t)(ncomp > 0 ? ncomp : 1) * (size_t)words, sizeof(uint64_t));
    if (!covered) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    /* ok[c] starts as "has an edge inside"; covered[c]: groups taken inside or disabled */
    memset(ok, 0, (size_t)ncomp);
    for (Py_ssize_t u = 0; u + 1 < np1; u++) {
        int32_t c = comp[u];
        if (c < 0) continue;
        for (Py_ssize_t w = 0; w < words; w++) covered[c * words + w] |= ~en[u * words + w] & full[w];
        for (int64_t e = indptr[u]; e < indptr[u + 1]; e++) {
            if (comp[col[e]] != c) continue;
            ok[c] = 1;
            for (Py_ssize_t w = 0; w < words; w++) covered[c * words + w] |= amask[(Py_ssize_t)eact[e] * words + w];
        }
    }
    for (Py_ssize_t c = 0; c < ncomp; c++)
        for (Py_ssize_t w = 0; w < words; w++)
            if ((covered[c * words + w] & full[w]) != full[w]) ok[c] = 0;
    Py_END_ALLOW_THREADS
    free(covered);
    release(&bufs);
    Py_RETURN_NONE;
fail:
    release(&bufs);
    return NULL;
}

/* ------------------------------------------------------------------ the heap */

/* Keep freed memory for the next chunk instead of giving it back to the kernel.  A search
 * allocates and frees arrays of tens of MB every chunk; glibc serves those with mmap (or
 * trims the heap's top once they are freed), so every chunk wrote to freshly faulted pages
 * the kernel had to zero first (a third of a 66M-state run's time was clear_page).  Every
 * array is served from the heap (no mmap at all: glibc falls back to it only if the heap
 * cannot grow), the heap grows 512 MB at a time and is trimmed only past 2 GB free, so a
 * chunk reuses its predecessor's pages, and the hash table's and the store's arrays, once
 * outgrown, hold later chunks and liveness's edges instead of going back to the kernel
 * (at 66.7M states: 7.6 GB faulted in over the run instead of 11.2 GB, for a peak 0.4 GB
 * higher; docs/performance.md).
 * One arena for every thread: the shards' and the kernel's threads allocate few, large
 * arrays, and with an arena each, what one thread freed could not serve another (a tenth
 * to a seventh of the resident set at 1.7M-5.7M states; the lock is taken a few times
 * per chunk).  Returns whether the allocator took the settings (False off glibc). */
static PyObject *keep_freed_memory(PyObject *self, PyObject *noargs) {
#ifdef __GLIBC__
    int ok = mallopt(M_MMAP_MAX, 0);
    ok &= mallopt(M_TOP_PAD, 512 << 20);
    ok &= mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
    ok &= mallopt(M_ARENA_MAX, 1);
    return PyBool_FromLong(ok);
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"keys_of", keys_of, METH_VARARGS, "one 64-bit key per packed row"},
    {"probe_shard", probe_shard, METH_VARARGS, "insert one shard's candidates"},
    {"number_new", number_new, METH_VARARGS, "number a batch's new states in candidate order"},
    {"settle", settle, METH_VARARGS, "give one shard's pending entries their numbers"},
    {"rehash", rehash, METH_VARARGS, "move a shard into a larger table"},
    {"renumber_table", renumber_table, METH_VARARGS, "entries of a renumbered block follow their states"},
    {"renumber_slots", renumber_slots, METH_VARARGS, "the same, visiting only the block's recorded slots"},
    {"count_out", count_out, METH_VARARGS, "out-degrees of a batch of edges"},
    {"fill_out", fill_out, METH_VARARGS, "place a batch of edges in their rows"},
    {"enabled_groups", enabled_groups, METH_VARARGS, "fairness groups enabled per state"},
    {"bfs", bfs, METH_VARARGS, "breadth-first search in increasing successor order"},
    {"components", components, METH_VARARGS, "the strongly connected components that hold a cycle"},
    {"fair_components", fair_components, METH_VARARGS, "which components are fair"},
    {"keep_freed_memory", keep_freed_memory, METH_NOARGS, "keep freed arrays in the heap for reuse"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "checker._native", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
