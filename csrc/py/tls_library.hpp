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

// SSL_get_error() results.
enum TlsError : int {
    kTlsErrorNone = 0,
    kTlsErrorSsl = 1,
    kTlsErrorWantRead = 2,
    kTlsErrorWantWrite = 3,
    kTlsErrorSyscall = 5,
    kTlsErrorZeroReturn = 6,
};

// SSL_get_shutdown() bits.
constexpr int kTlsReceivedShutdown = 2;

struct TlsLibrary {
    int (*SSL_read_ex)(OpaqueSsl*, void*, size_t, size_t*);
    int (*SSL_write_ex)(OpaqueSsl*, const void*, size_t, size_t*);
    int (*SSL_get_error)(const OpaqueSsl*, int);
    int (*SSL_pending)(const OpaqueSsl*);
    int (*SSL_get_shutdown)(const OpaqueSsl*);
    OpaqueBio* (*SSL_get_rbio)(const OpaqueSsl*);
    OpaqueBio* (*SSL_get_wbio)(const OpaqueSsl*);
    void* (*SSL_get_ex_data)(const OpaqueSsl*, int);
    OpaqueSslCtx* (*SSL_get_SSL_CTX)(const OpaqueSsl*);
    int (*BIO_write)(OpaqueBio*, const void*, int);
    long (*BIO_ctrl)(OpaqueBio*, int, long, void*);
    void (*ERR_clear_error)();
    unsigned long (*OpenSSL_version_num)();

    // BIO_ctrl_pending(): bytes waiting in a memory BIO.
    size_t pending(OpaqueBio* bio) const { return size_t(BIO_ctrl(bio, 10, 0, nullptr)); }
    // BIO_get_mem_data(): the memory BIO's unread bytes, without a copy.
    size_t peek(OpaqueBio* bio, char** data) const { return size_t(BIO_ctrl(bio, 3, 0, data)); }
    // BIO_reset(): empties a memory BIO.
    void reset(OpaqueBio* bio) const { BIO_ctrl(bio, 1, 0, nullptr); }

    // The table, resolved on first use from the libssl of the ssl module,
    // and checked against ssl.OPENSSL_VERSION_NUMBER; null if it cannot be
    // (the reason is in unavailable_reason()). Needs the GIL.
    static const TlsLibrary* get();
    static const char* unavailable_reason();
};

}  // namespace cxxloop::py
