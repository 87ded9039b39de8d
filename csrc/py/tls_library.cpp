#include "tls_library.hpp"

#include <dlfcn.h>

#include <atomic>

#include "pyref.hpp"

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
              resolve(image, "SSL_get_error", &t.SSL_get_error) && resolve(image, "SSL_pending", &t.SSL_pending) &&
              resolve(image, "SSL_get_shutdown", &t.SSL_get_shutdown) &&
              resolve(image, "SSL_get_rbio", &t.SSL_get_rbio) && resolve(image, "SSL_get_wbio", &t.SSL_get_wbio) &&
              resolve(image, "SSL_get_ex_data", &t.SSL_get_ex_data) &&
              resolve(image, "SSL_get_SSL_CTX", &t.SSL_get_SSL_CTX) && resolve(image, "BIO_write", &t.BIO_write) &&
              resolve(image, "BIO_ctrl", &t.BIO_ctrl) && resolve(image, "ERR_clear_error", &t.ERR_clear_error) &&
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
