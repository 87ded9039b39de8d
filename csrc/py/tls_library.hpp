// The OpenSSL that Python's own ssl module runs on, borrowed for the TLS
// transport's data path.
//
// The TLS transport never makes an SSL of its own: the SSL it drives is the
// one behind an ssl.SSLObject that SSLContext.wrap_bio() created, so
// certificates, verification, SNI, ALPN, sessions and keylog are set up by
// the ssl module exactly as for asyncio. That SSL belongs to the libssl the
// _ssl extension was linked with, which is the only one whose functions may
// touch it: they are looked up in _ssl's own image (dlopen of its file with
// RTLD_NOLOAD, then dlsym, which searches its dependencies), never linked at
// build time and never taken from the global scope. Nothing of OpenSSL's
// headers is needed: the few functions are declared here, with opaque types.
//
// Where this cannot apply (_ssl built into the interpreter, a symbol or the
// version check missing), TlsLibrary::get() is null and the loop uses
// asyncio's own sslproto instead.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace cxxloop::py {

struct OpaqueSsl;
struct OpaqueSslCtx;
struct OpaqueBio;
struct OpaqueBioMethod;

// SSL_get_error() results.
enum TlsError : int {
    kTlsErrorNone = 0,
    kTlsErrorSsl = 1,
    kTlsErrorWantRead = 2,
    kTlsErrorWantWrite = 3,
    kTlsErrorSyscall = 5,
    kTlsErrorZeroReturn = 6,
};

struct TlsLibrary {
    int (*SSL_read_ex)(OpaqueSsl*, void*, size_t, size_t*);
    int (*SSL_write_ex)(OpaqueSsl*, const void*, size_t, size_t*);
    int (*SSL_get_error)(const OpaqueSsl*, int);
    int (*SSL_has_pending)(const OpaqueSsl*);
    long (*SSL_ctrl)(OpaqueSsl*, int, long, void*);
    OpaqueBio* (*SSL_get_rbio)(const OpaqueSsl*);
    OpaqueBio* (*SSL_get_wbio)(const OpaqueSsl*);
    void (*SSL_set0_rbio)(OpaqueSsl*, OpaqueBio*);
    void (*SSL_set0_wbio)(OpaqueSsl*, OpaqueBio*);
    void* (*SSL_get_ex_data)(const OpaqueSsl*, int);
    // The transport's own BIOs (tls_bio.cpp).
    int (*BIO_get_new_index)();
    OpaqueBioMethod* (*BIO_meth_new)(int, const char*);
    void (*BIO_meth_free)(OpaqueBioMethod*);
    int (*BIO_meth_set_read_ex)(OpaqueBioMethod*, int (*)(OpaqueBio*, char*, size_t, size_t*));
    int (*BIO_meth_set_write_ex)(OpaqueBioMethod*, int (*)(OpaqueBio*, const char*, size_t, size_t*));
    int (*BIO_meth_set_ctrl)(OpaqueBioMethod*, long (*)(OpaqueBio*, int, long, void*));
    int (*BIO_meth_set_create)(OpaqueBioMethod*, int (*)(OpaqueBio*));
    int (*BIO_meth_set_destroy)(OpaqueBioMethod*, int (*)(OpaqueBio*));
    OpaqueBio* (*BIO_new)(const OpaqueBioMethod*);
    int (*BIO_free)(OpaqueBio*);
    int (*BIO_up_ref)(OpaqueBio*);
    void (*BIO_set_data)(OpaqueBio*, void*);
    void* (*BIO_get_data)(OpaqueBio*);
    void (*BIO_set_init)(OpaqueBio*, int);
    void (*BIO_set_flags)(OpaqueBio*, int);
    void (*BIO_clear_flags)(OpaqueBio*, int);
    unsigned long (*OpenSSL_version_num)();

    OpaqueBioMethod* bio_method;

    // SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS): the ssl module sets
    // that mode on every context, so that an idle connection holds no
    // record buffers; the SSL then allocates and frees them for every
    // record, which costs a tenth of a small record's processing. The
    // transport keeps them: two buffers of about 17 KiB a connection,
    // where asyncio's SSLProtocol holds a 256 KiB read buffer of its own.
    void keep_buffers(OpaqueSsl* ssl) const { SSL_ctrl(ssl, 78, 0x10, nullptr); }

    // The table, resolved on first use from the libssl of the ssl module,
    // and checked against ssl.OPENSSL_VERSION_NUMBER; null if it cannot be
    // (the reason is in unavailable_reason()). Needs the GIL.
    static const TlsLibrary* get();
    static const char* unavailable_reason();
};

}  // namespace cxxloop::py
