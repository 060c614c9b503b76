/* Test helper, built static by the mount tests: connects to the UNIX socket named by $SSH_AUTH_SOCK.
   Without arguments it sends "ping" and prints the reply; with "ids" it asks a real ssh-agent for its
   identities (SSH2_AGENTC_REQUEST_IDENTITIES) and prints how many keys it holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const char *p = getenv("SSH_AUTH_SOCK");
  if (!p) { fprintf(stderr, "SSH_AUTH_SOCK not set\n"); return 2; }
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, p, sizeof a.sun_path - 1);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
  if (argc > 1 && !strcmp(argv[1], "ids")) {
    const unsigned char req[5] = {0, 0, 0, 1, 11};
    unsigned char resp[9];
    if (write(s, req, 5) != 5) return 1;
    size_t got = 0;
    while (got < 9) { ssize_t n = read(s, resp + got, 9 - got); if (n <= 0) return 1; got += (size_t)n; }
    if (resp[4] != 12) { fprintf(stderr, "unexpected agent answer %d\n", resp[4]); return 1; }
    printf("identities %u\n", (unsigned)resp[5] << 24 | (unsigned)resp[6] << 16 | (unsigned)resp[7] << 8 | resp[8]);
    return 0;
  }
  if (write(s, "ping", 4) != 4) return 1;
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf - 1);
  if (n <= 0) return 1;
  buf[n] = 0;
  printf("%s\n", buf);
  return 0;
}
