/* proxy_net_shim.c: builds plugins/common/proxy_socket.c unchanged, but with its socket
 * calls pointing at fz_net_* (fuzz_proxy.c), so the proxy's reply comes from the input. */

/* Every header the file includes comes first, so the renames below touch only the
 * calls in its body, never a declaration in a system or SDK header. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <imapwire/transport.h>
#include "../plugins/common/proxy_socket.h"
#include "fz_net.h"

#define socket     fz_net_socket
#define setsockopt fz_net_setsockopt
#define getsockopt fz_net_getsockopt
#define bind       fz_net_bind
#define connect    fz_net_connect
#define poll       fz_net_poll
#define send       fz_net_send
#define recv       fz_net_recv
#define close      fz_net_close

#include "../plugins/common/proxy_socket.c"
