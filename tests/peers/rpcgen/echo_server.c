/* The rpc_echo service as an rpcgen/libtirpc server, on a port of our choosing and not
 * registered with rpcbind:
 *
 *   echo_server PORT [SECONDS]
 *
 * Serves program 300002 version 1 over TCP and UDP on 127.0.0.1:PORT (0: any; the ports
 * are printed as "listening tcp PORT" and "listening udp PORT"), and exits after SECONDS
 * (default 120) should nobody stop it. The dispatch is rpcgen's (rpc_echo_svc.c, -m). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <rpc/rpc.h>
#include "rpc_echo.h"

void echo_prog_1(struct svc_req *rqstp, register SVCXPRT *transp);

char **echo_1_svc(char **text, struct svc_req *req) {
    static char *result;
    (void)req;
    result = *text;
    return &result;
}

u_int *whoami_1_svc(void *arg, struct svc_req *req) {
    static u_int uid;
    (void)arg;
    if (req->rq_cred.oa_flavor != AUTH_SYS) {
        svcerr_weakauth(req->rq_xprt);
        return NULL;
    }
    uid = ((struct authunix_parms *)req->rq_clntcred)->aup_uid;
    return &uid;
}

static int bound(int type, int port) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int one = 1;
    int fd = socket(AF_INET, type, 0);
    if (fd < 0) { perror("socket"); exit(1); }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); exit(1); }
    if (type == SOCK_STREAM && listen(fd, 64) < 0) { perror("listen"); exit(1); }
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0) { perror("getsockname"); exit(1); }
    printf("listening %s %d\n", type == SOCK_STREAM ? "tcp" : "udp", ntohs(addr.sin_port));
    return fd;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int seconds = argc > 2 ? atoi(argv[2]) : 120;
    SVCXPRT *tcp, *udp;
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(seconds);
    tcp = svctcp_create(bound(SOCK_STREAM, port), 0, 0);
    udp = svcudp_create(bound(SOCK_DGRAM, port));
    if (tcp == NULL || udp == NULL) { fprintf(stderr, "cannot create transports\n"); return 1; }
    /* Protocol 0: not registered with rpcbind. */
    if (!svc_register(tcp, ECHO_PROG, ECHO_VERS, echo_prog_1, 0)
        || !svc_register(udp, ECHO_PROG, ECHO_VERS, echo_prog_1, 0)) {
        fprintf(stderr, "cannot register the dispatch\n");
        return 1;
    }
    svc_run();
    return 1;
}
