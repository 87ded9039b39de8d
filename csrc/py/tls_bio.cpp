#include "tls_bio.hpp"

#include "tls_transport.hpp"

namespace cxxloop::py {

namespace {

// OpenSSL's BIO constants (bio.h).
constexpr int kBioTypeSourceSink = 0x0400;
constexpr int kBioFlagsRead = 0x01;
constexpr int kBioFlagsShouldRetry = 0x08;
constexpr int kBioFlagsRetryAny = 0x07 | kBioFlagsShouldRetry;
constexpr int kBioCtrlPending = 10;
constexpr int kBioCtrlFlush = 11;
constexpr int kBioCtrlWpending = 13;

TlsTransport* owner(const TlsLibrary* lib, OpaqueBio* bio) { return static_cast<TlsTransport*>(lib->BIO_get_data(bio)); }

int bio_create(OpaqueBio* bio) {
    TlsLibrary::get()->BIO_set_init(bio, 1);
    return 1;
}

int bio_destroy(OpaqueBio*) { return 1; }

// Nothing received yet is "retry later", as a memory BIO says when empty.
int bio_read(OpaqueBio* bio, char* out, size_t n, size_t* got) {
    const TlsLibrary* lib = TlsLibrary::get();
    lib->BIO_clear_flags(bio, kBioFlagsRetryAny);
    TlsTransport* t = owner(lib, bio);
    *got = t ? t->take_ciphertext(out, n) : 0;
    if (*got > 0) return 1;
    lib->BIO_set_flags(bio, kBioFlagsRead | kBioFlagsShouldRetry);
    return 0;
}

int bio_write(OpaqueBio* bio, const char* data, size_t n, size_t* written) {
    const TlsLibrary* lib = TlsLibrary::get();
    lib->BIO_clear_flags(bio, kBioFlagsRetryAny);
    TlsTransport* t = owner(lib, bio);
    if (t && !t->put_ciphertext(data, n)) return 0;
    *written = n;
    return 1;
}

long bio_ctrl(OpaqueBio* bio, int cmd, long, void*) {
    switch (cmd) {
        case kBioCtrlPending: {
            TlsTransport* t = owner(TlsLibrary::get(), bio);
            return t ? long(t->ciphertext_pending()) : 0;
        }
        case kBioCtrlWpending: return 0;
        case kBioCtrlFlush: return 1;
        default: return 0;  // what a memory BIO answers to the rest
    }
}

}  // namespace

OpaqueBioMethod* new_transport_bio_method(const TlsLibrary& lib) {
    int type = lib.BIO_get_new_index();
    OpaqueBioMethod* m = type > 0 ? lib.BIO_meth_new(type | kBioTypeSourceSink, "cxxloop TLS transport") : nullptr;
    if (!m) return nullptr;
    if (lib.BIO_meth_set_read_ex(m, bio_read) != 1 || lib.BIO_meth_set_write_ex(m, bio_write) != 1 ||
        lib.BIO_meth_set_ctrl(m, bio_ctrl) != 1 || lib.BIO_meth_set_create(m, bio_create) != 1 ||
        lib.BIO_meth_set_destroy(m, bio_destroy) != 1) {
        lib.BIO_meth_free(m);
        return nullptr;
    }
    return m;
}

bool attach_transport_bios(const TlsLibrary& lib, OpaqueSsl* ssl, TlsTransport* t) {
    OpaqueBio* in = lib.BIO_new(lib.bio_method);
    OpaqueBio* out = in ? lib.BIO_new(lib.bio_method) : nullptr;
    if (!out) {
        if (in) lib.BIO_free(in);
        return false;
    }
    lib.BIO_set_data(in, t);
    lib.BIO_set_data(out, t);
    // Each set0 takes the new BIO's reference and drops the SSL's own
    // reference to the MemoryBIO's (whose object keeps one).
    lib.SSL_set0_rbio(ssl, in);
    lib.SSL_set0_wbio(ssl, out);
    return true;
}

void restore_memory_bios(const TlsLibrary& lib, OpaqueSsl* ssl, OpaqueBio* rbio, OpaqueBio* wbio) {
    lib.BIO_up_ref(rbio);
    lib.BIO_up_ref(wbio);
    lib.SSL_set0_rbio(ssl, rbio);
    lib.SSL_set0_wbio(ssl, wbio);
}

}  // namespace cxxloop::py
