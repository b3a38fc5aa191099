// delay-relay: the delay and jitter of a test network node (test/netns/net.ts, Net.delay).
// This kernel has no netem qdisc, so a node's outgoing packets are routed into a TUN device
// instead of eth0; this program reads each IP packet from it, holds it for delay ± jitter
// (uniform, so packets may overtake each other, as on a real path with jitter) and sends it on
// unchanged through a raw socket whose packets carry a firewall mark that policy routing sends out
// eth0. Incoming packets are not touched: each node delays what it sends.
//
//   delay-relay <tun device> <delay ms> <jitter ms> <seed> <mark>
//
// It prints "delay-relay ready" once the device is attached, and exits on SIGTERM or when the
// process that started it dies. Packets held beyond MAX_HELD (a flood) are dropped and counted on exit. Built by the
// test harness with the system's C compiler (no library beyond libc).
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HELD 4096
#define MAX_PACKET 65536

struct held {
  int64_t due_us;
  size_t len;
  unsigned char *data;
};

static struct held queue[MAX_HELD];
static size_t held_count = 0;
static volatile sig_atomic_t stop = 0;

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

// xorshift64*: reproducible jitter from the seed.
static uint64_t rng_state;
static double rng_unit(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ULL) >> 11) / (double)(1ULL << 53);
}

static int tun_open(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  if (fd < 0) return -1;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void send_packet(int raw, const unsigned char *p, size_t len, uint64_t *sent, uint64_t *errors) {
  if (len < sizeof(struct iphdr) || (p[0] >> 4) != 4) {
    (*errors)++;
    return;
  }
  const struct iphdr *ip = (const struct iphdr *)p;
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = ip->daddr;
  if (sendto(raw, p, len, 0, (struct sockaddr *)&to, sizeof to) < 0) (*errors)++;
  else (*sent)++;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: delay-relay <tun device> <delay ms> <jitter ms> <seed> <mark>\n");
    return 2;
  }
  const double delay_ms = atof(argv[2]);
  const double jitter_ms = atof(argv[3]);
  rng_state = strtoull(argv[4], NULL, 10) * 2654435761ULL + 88172645463325252ULL;
  const int mark = atoi(argv[5]);
  if (delay_ms < 0 || jitter_ms < 0 || jitter_ms > delay_ms) {
    fprintf(stderr, "delay-relay: need 0 <= jitter <= delay (got delay %s, jitter %s)\n", argv[2], argv[3]);
    return 2;
  }
  int tun = tun_open(argv[1]);
  if (tun < 0) {
    fprintf(stderr, "delay-relay: cannot attach to TUN device %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  int raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (raw < 0 || setsockopt(raw, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
    fprintf(stderr, "delay-relay: raw socket with mark %d: %s\n", mark, strerror(errno));
    return 1;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGPIPE, SIG_IGN);
  printf("delay-relay ready\n");
  fflush(stdout);

  uint64_t sent = 0, dropped = 0, errors = 0;
  unsigned char buf[MAX_PACKET];
  struct pollfd fds[1] = {{.fd = tun, .events = POLLIN}};
  while (!stop) {
    // Wait until the next packet is due, or for input.
    int64_t now = now_us();
    int timeout = -1;
    for (size_t i = 0; i < held_count; i++) {
      int64_t wait_ms = (queue[i].due_us - now + 999) / 1000;
      if (wait_ms < 0) wait_ms = 0;
      if (timeout < 0 || wait_ms < timeout) timeout = (int)wait_ms;
    }
    if (poll(fds, 1, timeout) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      for (int k = 0; k < 256; k++) {
        ssize_t n = read(tun, buf, sizeof buf);
        if (n <= 0) break;
        if (held_count == MAX_HELD) {
          dropped++;
          continue;
        }
        double d = delay_ms + jitter_ms * (2 * rng_unit() - 1);
        unsigned char *copy = malloc((size_t)n);
        if (copy == NULL) {
          dropped++;
          continue;
        }
        memcpy(copy, buf, (size_t)n);
        queue[held_count].due_us = now_us() + (int64_t)(d * 1000);
        queue[held_count].len = (size_t)n;
        queue[held_count].data = copy;
        held_count++;
      }
    }
    // Send what is due, in arrival order (without jitter nothing is reordered); keep the rest.
    now = now_us();
    size_t kept = 0;
    for (size_t i = 0; i < held_count; i++) {
      if (queue[i].due_us <= now) {
        send_packet(raw, queue[i].data, queue[i].len, &sent, &errors);
        free(queue[i].data);
      } else {
        queue[kept++] = queue[i];
      }
    }
    held_count = kept;
  }
  fprintf(stderr, "delay-relay: %llu sent, %llu dropped (queue full), %llu send errors\n", (unsigned long long)sent, (unsigned long long)dropped,
          (unsigned long long)errors);
  return 0;
}
