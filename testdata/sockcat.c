/* Test helper, built static by the mount tests: connects to the UNIX socket named by $SSH_AUTH_SOCK,
   sends "ping", prints the reply. Proves that an ssh agent socket is reachable from a RUN step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(void) {
  const char *p = getenv("SSH_AUTH_SOCK");
  if (!p) { fprintf(stderr, "SSH_AUTH_SOCK not set\n"); return 2; }
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  strncpy(a.sun_path, p, sizeof a.sun_path - 1);
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
  if (write(s, "ping", 4) != 4) return 1;
  char buf[64];
  ssize_t n = read(s, buf, sizeof buf - 1);
  if (n <= 0) return 1;
  buf[n] = 0;
  printf("%s\n", buf);
  return 0;
}
