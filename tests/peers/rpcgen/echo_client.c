/* An rpcgen/libtirpc client of the rpc_echo service:
 *
 *   echo_client tcp|udp PORT null
 *   echo_client tcp|udp PORT echo LENGTH      (a string of LENGTH 'x's; checks the echo)
 *   echo_client tcp|udp PORT whoami [sys]     (with sys: authunix_create_default())
 *   echo_client tcp PORT bench COUNT LENGTH   (COUNT echoes one after another; prints ns)
 *
 * Calls 127.0.0.1:PORT directly (no rpcbind). Prints one line per call: "ok", "ok LENGTH",
 * "uid N", or "error <clnt_sperror>"; exits 0 when every call succeeded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <rpc/rpc.h>
#include "rpc_echo.h"

static CLIENT *connect_to(const char *proto, int port) {
    struct sockaddr_in addr;
    int sock = RPC_ANYSOCK;
    struct timeval retry = {1, 0};
    CLIENT *clnt;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (strcmp(proto, "udp") == 0)
        clnt = clntudp_create(&addr, ECHO_PROG, ECHO_VERS, retry, &sock);
    else
        clnt = clnttcp_create(&addr, ECHO_PROG, ECHO_VERS, &sock, 0, 0);
    if (clnt == NULL) {
        printf("error %s\n", clnt_spcreateerror("connect"));
        exit(1);
    }
    return clnt;
}

static char *text_of(int length) {
    char *text = malloc(length + 1);
    memset(text, 'x', length);
    text[length] = 0;
    return text;
}

int main(int argc, char **argv) {
    CLIENT *clnt;
    struct timeval timeout = {25, 0};
    if (argc < 4) { fprintf(stderr, "usage: see the source\n"); return 2; }
    clnt = connect_to(argv[1], atoi(argv[2]));
    clnt_control(clnt, CLSET_TIMEOUT, (char *)&timeout);
    if (strcmp(argv[3], "null") == 0) {
        if (clnt_call(clnt, NULLPROC, (xdrproc_t)xdr_void, NULL, (xdrproc_t)xdr_void, NULL,
                      timeout) != RPC_SUCCESS) {
            printf("error %s\n", clnt_sperror(clnt, "null"));
            return 1;
        }
        printf("ok\n");
    } else if (strcmp(argv[3], "echo") == 0 && argc > 4) {
        int length = atoi(argv[4]);
        char *text = text_of(length);
        char **echoed = echo_1(&text, clnt);
        if (echoed == NULL) { printf("error %s\n", clnt_sperror(clnt, "echo")); return 1; }
        if (strcmp(*echoed, text) != 0) { printf("error echo differs\n"); return 1; }
        printf("ok %zu\n", strlen(*echoed));
    } else if (strcmp(argv[3], "whoami") == 0) {
        u_int *uid;
        if (argc > 4 && strcmp(argv[4], "sys") == 0) {
            auth_destroy(clnt->cl_auth);
            clnt->cl_auth = authunix_create_default();
        }
        uid = whoami_1(NULL, clnt);
        if (uid == NULL) { printf("error %s\n", clnt_sperror(clnt, "whoami")); return 1; }
        printf("uid %u\n", *uid);
    } else if (strcmp(argv[3], "bench") == 0 && argc > 5) {
        long count = atol(argv[4]), i;
        char *text = text_of(atoi(argv[5]));
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (i = 0; i < count; i++) {
            char **echoed = echo_1(&text, clnt);
            if (echoed == NULL) { printf("error %s\n", clnt_sperror(clnt, "echo")); return 1; }
            xdr_free((xdrproc_t)xdr_wrapstring, (char *)echoed);
        }
        clock_gettime(CLOCK_MONOTONIC, &end);
        printf("%lld\n", (long long)(end.tv_sec - start.tv_sec) * 1000000000LL
                             + (end.tv_nsec - start.tv_nsec));
    } else {
        fprintf(stderr, "unknown command %s\n", argv[3]);
        return 2;
    }
    clnt_destroy(clnt);
    return 0;
}
