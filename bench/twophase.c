/* A yardstick, not part of the product: the smallest hand-written breadth-first explorer
 * of Lamport's TwoPhase commit for N resource managers, to compare the engine with what
 * plain C does on the same state space (bench/compare_tlc.py builds and runs it).
 *
 * One state is one 64-bit word: 2 bits of rmState per RM, 1 bit of tmState, N bits of
 * tmPrepared, N bits of Prepared messages and the Commit and Abort message bits.  The
 * visited set is an open-addressing table of those words (linear probing, grown at half
 * load); the BFS queue is the array of distinct states in the order they were found, so
 * one level is a contiguous block.  Counting follows TLC: every successor of every
 * enabled action instance is "generated", duplicates included.  It checks TCConsistent
 * and that no state deadlocks, like the engine's run of the same spec.
 *
 *   cc -O2 -o twophase twophase.c && ./twophase 8
 * prints one JSON line: {"rms": 8, "distinct": ..., "generated": ..., "depth": ..., "seconds": ...}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { WORKING = 0, PREPARED = 1, COMMITTED = 2, ABORTED = 3 };

static int N;
static uint64_t *table; /* key + 1 (0 = empty) */
static uint64_t mask;
static uint64_t used;
static uint64_t *states;
static uint64_t nstates, cap;
static uint64_t generated;

static unsigned rm(uint64_t s, int r) { return (unsigned)(s >> (2 * r)) & 3u; }
static uint64_t set_rm(uint64_t s, int r, unsigned v) {
    return (s & ~(3ull << (2 * r))) | ((uint64_t)v << (2 * r));
}
#define TM_BIT(s) (((s) >> (2 * N)) & 1u)
#define PREP_SHIFT (2 * N + 1)
#define MSG_SHIFT (3 * N + 1)
#define COMMIT_MSG (1ull << (MSG_SHIFT + N))
#define ABORT_MSG (1ull << (MSG_SHIFT + N + 1))

static uint64_t mix(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void grow(void);

static void visit(uint64_t s) {
    generated++;
    uint64_t h = mix(s) & mask;
    while (table[h]) {
        if (table[h] == s + 1) return;
        h = (h + 1) & mask;
    }
    table[h] = s + 1;
    if (nstates == cap) {
        cap *= 2;
        states = realloc(states, cap * sizeof *states);
        if (!states) { perror("realloc"); exit(1); }
    }
    states[nstates++] = s;
    if (++used * 2 > mask + 1) grow();
}

static void grow(void) {
    uint64_t old = mask + 1, *t = table;
    mask = 2 * old - 1;
    table = calloc(mask + 1, sizeof *table);
    if (!table) { perror("calloc"); exit(1); }
    for (uint64_t i = 0; i < old; i++) {
        if (!t[i]) continue;
        uint64_t h = mix(t[i] - 1) & mask;
        while (table[h]) h = (h + 1) & mask;
        table[h] = t[i];
    }
    free(t);
}

static int consistent(uint64_t s) {
    int committed = 0, aborted = 0;
    for (int r = 0; r < N; r++) {
        committed |= rm(s, r) == COMMITTED;
        aborted |= rm(s, r) == ABORTED;
    }
    return !(committed && aborted);
}

/* Every successor of s, one per enabled action instance; returns how many. */
static int successors(uint64_t s) {
    int k = 0;
    uint64_t all = (1ull << N) - 1;
    int tm_init = TM_BIT(s) == 0;
    if (tm_init && ((s >> PREP_SHIFT) & all) == all) { visit(s | (1ull << (2 * N)) | COMMIT_MSG); k++; }
    if (tm_init) { visit(s | (1ull << (2 * N)) | ABORT_MSG); k++; }
    for (int r = 0; r < N; r++) {
        if (tm_init && (s >> (MSG_SHIFT + r) & 1)) { visit(s | (1ull << (PREP_SHIFT + r))); k++; }
        if (rm(s, r) == WORKING) {
            visit(set_rm(s, r, PREPARED) | (1ull << (MSG_SHIFT + r)));
            visit(set_rm(s, r, ABORTED));
            k += 2;
        }
        if (s & COMMIT_MSG) { visit(set_rm(s, r, COMMITTED)); k++; }
        if (s & ABORT_MSG) { visit(set_rm(s, r, ABORTED)); k++; }
    }
    return k;
}

int main(int argc, char **argv) {
    N = argc > 1 ? atoi(argv[1]) : 8;
    if (N < 1 || N > 15) { fprintf(stderr, "rms must be 1..15\n"); return 2; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mask = (1u << 12) - 1;
    table = calloc(mask + 1, sizeof *table);
    cap = 1u << 12;
    states = malloc(cap * sizeof *states);
    visit(0); /* every RM working, TM in init, nothing prepared, no messages */
    int depth = 1;
    uint64_t lo = 0, hi = nstates;
    while (lo < hi) {
        for (uint64_t i = lo; i < hi; i++) {
            uint64_t s = states[i];
            if (!consistent(s)) { fprintf(stderr, "TCConsistent violated\n"); return 1; }
            if (successors(s) == 0) { fprintf(stderr, "deadlock\n"); return 1; }
        }
        lo = hi;
        hi = nstates;
        if (hi > lo) depth++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"rms\": %d, \"distinct\": %llu, \"generated\": %llu, \"depth\": %d, \"seconds\": %.4f}\n", N,
           (unsigned long long)nstates, (unsigned long long)generated, depth, secs);
    return 0;
}
