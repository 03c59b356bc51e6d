/* The certificate and key files of --tls-cert/--tls-key, read whole for
 * libmicrohttpd's HTTPS_MEM options (it takes memory, not paths). */
#ifndef SIGHT_HTTP_PEM_FILE_H
#define SIGHT_HTTP_PEM_FILE_H

/* The file's text, NUL-terminated (free it), or NULL with an error logged
 * that names flag and path: unreadable, over 1 MiB, or without marker (the
 * kind of PEM block expected). */
char *pem_file_read(const char *path, const char *flag, const char *marker);

#endif
