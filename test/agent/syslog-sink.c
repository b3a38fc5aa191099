/* A local syslog for the syslog tests: binds a Unix datagram socket at argv[1] (what /dev/log
 * is) and prints every datagram it receives as one line on stdout, until killed. Node cannot
 * open a Unix datagram socket, hence C (built by the test with the system's cc). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: syslog-sink PATH\n");
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(argv[1]) >= sizeof addr.sun_path) {
    fprintf(stderr, "path too long\n");
    return 1;
  }
  strcpy(addr.sun_path, argv[1]);
  unlink(argv[1]);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("bind");
    return 1;
  }
  printf("syslog-sink ready\n");
  fflush(stdout);
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n < 0) continue;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0')) n--;
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] == '\n') buf[i] = ' ';
    buf[n] = '\0';
    printf("%s\n", buf);
    fflush(stdout);
  }
}
