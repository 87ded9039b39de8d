#include "tls_library.hpp"

#include <dlfcn.h>

#include <atomic>

#include "pyref.hpp"
#include "tls_bio.hpp"

namespace cxxloop::py {
namespace {

// CPython requires OpenSSL 1.1.1 (PEP 644), which has every function here.
constexpr unsigned long kOldestOpenSsl = 0x10101000UL;

struct Resolved {
    TlsLibrary table{};
    const char* reason = nullptr;  // why it is unavailable; null if it is
};

template <class F>
bool resolve(void* image, const char* name, F* out) {
    *out = reinterpret_cast<F>(dlsym(image, name));
    return *out != nullptr;
}

// Needs the GIL: it imports the ssl module.
Resolved resolve_library() {
    Resolved r;
    Ref ssl_ext = Ref::steal(PyImport_ImportModule("_ssl"));
    Ref path = ssl_ext ? Ref::steal(PyObject_GetAttrString(ssl_ext.get(), "__file__")) : Ref();
    const char* file = path && PyUnicode_Check(path.get()) ? PyUnicode_AsUTF8(path.get()) : nullptr;
    if (!file) {
        PyErr_Clear();
        r.reason = "the ssl module's _ssl is not a shared library of its own";
        return r;
    }
    // The image is already loaded (the ssl module imported it): NOLOAD only
    // takes another reference to it, kept for the process's lifetime.
    void* image = dlopen(file, RTLD_NOW | RTLD_NOLOAD);
    if (!image) {
        r.reason = "_ssl's shared library cannot be opened again";
        return r;
    }
    TlsLibrary& t = r.table;
    bool ok = resolve(image, "SSL_read_ex", &t.SSL_read_ex) && resolve(image, "SSL_write_ex", &t.SSL_write_ex) &&
              resolve(image, "SSL_get_error", &t.SSL_get_error) &&
              resolve(image, "SSL_has_pending", &t.SSL_has_pending) && resolve(image, "SSL_ctrl", &t.SSL_ctrl) &&
              resolve(image, "SSL_get_rbio", &t.SSL_get_rbio) && resolve(image, "SSL_get_wbio", &t.SSL_get_wbio) &&
              resolve(image, "SSL_set0_rbio", &t.SSL_set0_rbio) && resolve(image, "SSL_set0_wbio", &t.SSL_set0_wbio) &&
              resolve(image, "SSL_get_ex_data", &t.SSL_get_ex_data) &&
              resolve(image, "BIO_get_new_index", &t.BIO_get_new_index) &&
              resolve(image, "BIO_meth_new", &t.BIO_meth_new) && resolve(image, "BIO_meth_free", &t.BIO_meth_free) &&
              resolve(image, "BIO_meth_set_read_ex", &t.BIO_meth_set_read_ex) &&
              resolve(image, "BIO_meth_set_write_ex", &t.BIO_meth_set_write_ex) &&
              resolve(image, "BIO_meth_set_ctrl", &t.BIO_meth_set_ctrl) &&
              resolve(image, "BIO_meth_set_create", &t.BIO_meth_set_create) &&
              resolve(image, "BIO_meth_set_destroy", &t.BIO_meth_set_destroy) &&
              resolve(image, "BIO_new", &t.BIO_new) && resolve(image, "BIO_free", &t.BIO_free) &&
              resolve(image, "BIO_up_ref", &t.BIO_up_ref) && resolve(image, "BIO_set_data", &t.BIO_set_data) &&
              resolve(image, "BIO_get_data", &t.BIO_get_data) && resolve(image, "BIO_set_init", &t.BIO_set_init) &&
              resolve(image, "BIO_set_flags", &t.BIO_set_flags) &&
              resolve(image, "BIO_clear_flags", &t.BIO_clear_flags) &&
              resolve(image, "OpenSSL_version_num", &t.OpenSSL_version_num);
    if (!ok) {
        r.reason = "_ssl's libssl does not export the functions the TLS transport calls";
        return r;
    }
    // The ssl module reports the version of the library it runs on; a
    // different one found here would not be the library of its SSL objects.
    Ref ssl_mod = Ref::steal(PyImport_ImportModule("ssl"));
    Ref number = ssl_mod ? Ref::steal(PyObject_GetAttrString(ssl_mod.get(), "OPENSSL_VERSION_NUMBER")) : Ref();
    unsigned long expected = number ? PyLong_AsUnsignedLong(number.get()) : 0;
    if (PyErr_Occurred()) PyErr_Clear();
    unsigned long found = t.OpenSSL_version_num();
    if (found != expected || found < kOldestOpenSsl) {
        r.reason = "the libssl found is not the ssl module's OpenSSL";
        return r;
    }
    t.bio_method = new_transport_bio_method(t);
    if (!t.bio_method) r.reason = "OpenSSL would not make the transport's BIO method";
    return r;
}

const Resolved& resolved() {
    // Resolved once per process: the ssl module's library is the same for
    // every interpreter. Two first calls at once (interpreters with their
    // own GILs) may both resolve, which gives the same table; only one is
    // kept. Nothing here waits for another thread, which could deadlock on
    // the GIL that resolving itself may release.
    static std::atomic<const Resolved*> cache{nullptr};
    const Resolved* r = cache.load(std::memory_order_acquire);
    if (r) return *r;
    auto* fresh = new Resolved(resolve_library());
    if (cache.compare_exchange_strong(r, fresh, std::memory_order_acq_rel)) return *fresh;
    delete fresh;
    return *r;
}

}  // namespace

const TlsLibrary* TlsLibrary::get() {
    const Resolved& r = resolved();
    return r.reason ? nullptr : &r.table;
}

const char* TlsLibrary::unavailable_reason() { return resolved().reason; }

}  // namespace cxxloop::py
