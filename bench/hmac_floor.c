/*
 * hmac_floor.c - the floor for V1 signing: HMAC-SHA1 + Base64 of a fixed string-to-sign,
 * nothing else (no parameter collection, sorting or percent-encoding).
 *
 *   hmac_floor <iterations> <key> < string-to-sign
 *
 * Two ways a C programmer would write it, both timed:
 *   evp_mac  one EVP_MAC_CTX fetched once, EVP_MAC_init(key) + update + final per signature
 *            (OpenSSL 3; the fastest public API we know of)
 *   hmac     the one-shot HMAC(EVP_sha1(), ...) per signature
 * Prints one line per variant: "<variant> <iterations> <seconds> <ops_per_s>", and a checksum
 * line so the work cannot be optimised away.
 * Built by scripts/bench with: cc -O2 -o build/bench/hmac_floor bench/hmac_floor.c -lcrypto
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    static char sts[65536];
    size_t stslen, keylen;
    long iterations, i;
    unsigned char md[EVP_MAX_MD_SIZE], b64[64];
    unsigned long checksum = 0;
    const char *key;
    double t0, t;

    if (argc != 3) {
        fprintf(stderr, "usage: %s <iterations> <key> < string-to-sign\n", argv[0]);
        return 2;
    }
    iterations = atol(argv[1]);
    key = argv[2];
    keylen = strlen(key);
    stslen = fread(sts, 1, sizeof sts, stdin);
    if (stslen == 0 || stslen == sizeof sts) {
        fprintf(stderr, "string-to-sign missing or too long\n");
        return 2;
    }

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    {
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM params[2];
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0);
        params[1] = OSSL_PARAM_construct_end();
        if (ctx == NULL || !EVP_MAC_CTX_set_params(ctx, params)) {
            fprintf(stderr, "EVP_MAC setup failed\n");
            return 1;
        }
        t0 = now();
        for (i = 0; i < iterations; i++) {
            size_t mdlen = 0;
            if (!EVP_MAC_init(ctx, (const unsigned char *)key, keylen, NULL) ||
                !EVP_MAC_update(ctx, (const unsigned char *)sts, stslen) ||
                !EVP_MAC_final(ctx, md, &mdlen, sizeof md) || mdlen != 20) {
                fprintf(stderr, "HMAC failed\n");
                return 1;
            }
            EVP_EncodeBlock(b64, md, 20);
            checksum += b64[i % 28];
        }
        t = now() - t0;
        printf("evp_mac %ld %.6f %.1f\n", iterations, t, (double)iterations / t);
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
    }
#endif
    t0 = now();
    for (i = 0; i < iterations; i++) {
        unsigned int mdlen = 0;
        if (HMAC(EVP_sha1(), key, (int)keylen, (const unsigned char *)sts, stslen, md, &mdlen) ==
                NULL || mdlen != 20) {
            fprintf(stderr, "HMAC failed\n");
            return 1;
        }
        EVP_EncodeBlock(b64, md, 20);
        checksum += b64[i % 28];
    }
    t = now() - t0;
    printf("hmac %ld %.6f %.1f\n", iterations, t, (double)iterations / t);
    printf("checksum %lu %s\n", checksum, (const char *)b64);
    return 0;
}
