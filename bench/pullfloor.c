/* The floor of a pull of one gzip layer (bench/pullfloor.sh): the work tsbuild's pull does, in C,
 * one thread, nothing else. stdin: the blob as it downloads (curl). It is written to BLOB and hashed
 * (the blob's digest), inflated and hashed again (the diffID), and the tar goes to stdout (tar -x
 * writes the files); BLOB is fsynced. Prints both digests and the gzip member count to stderr.
 * Build: cc -O2 -o pullfloor pullfloor.c -lz -lcrypto (Debian: zlib1g-dev, libssl-dev). */
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK (1 << 20)

static void writeall(int fd, const unsigned char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) { perror("write"); exit(1); }
    p += w; n -= (size_t)w;
  }
}

static void hex(const char *what, EVP_MD_CTX *c) {
  unsigned char d[32]; unsigned n;
  EVP_DigestFinal_ex(c, d, &n);
  fprintf(stderr, "%s sha256:", what);
  for (unsigned i = 0; i < n; i++) fprintf(stderr, "%02x", d[i]);
  fprintf(stderr, "\n");
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: pullfloor BLOB < blob > tar\n"); return 2; }
  int blob = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (blob < 0) { perror(argv[1]); return 1; }
  static unsigned char in[CHUNK], out[CHUNK];
  EVP_MD_CTX *cd = EVP_MD_CTX_new(), *ud = EVP_MD_CTX_new();
  EVP_DigestInit_ex(cd, EVP_sha256(), NULL);
  EVP_DigestInit_ex(ud, EVP_sha256(), NULL);
  z_stream z = {0};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return 1;
  long members = 0;
  for (;;) {
    ssize_t n = read(0, in, CHUNK);
    if (n < 0) { perror("read"); return 1; }
    if (n == 0) break;
    writeall(blob, in, (size_t)n);
    EVP_DigestUpdate(cd, in, (size_t)n);
    z.next_in = in; z.avail_in = (uInt)n;
    /* Until the input is used up and inflate left room in the output (nothing pending). */
    for (;;) {
      z.next_out = out; z.avail_out = CHUNK;
      int r = inflate(&z, Z_NO_FLUSH);
      if (r != Z_OK && r != Z_STREAM_END) { fprintf(stderr, "inflate: %d\n", r); return 1; }
      size_t got = CHUNK - z.avail_out;
      EVP_DigestUpdate(ud, out, got);
      writeall(1, out, got);
      /* A gzip member ends; another may follow (a stream may be several members, as gzip allows). */
      if (r == Z_STREAM_END) { inflateReset(&z); members++; }
      if (z.avail_in == 0 && z.avail_out != 0) break;
    }
  }
  if (fsync(blob) != 0) { perror("fsync"); return 1; }
  close(blob);
  hex("blob", cd);
  hex("diff", ud);
  fprintf(stderr, "members %ld\n", members);
  return members > 0 ? 0 : 1;
}
