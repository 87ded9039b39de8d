// The BIOs a TLS transport puts under its SSL, in place of the two
// ssl.MemoryBIOs that wrap_bio() gave it.
//
// A memory BIO costs the data path two copies and a memset per record:
// ciphertext read from the socket is copied into it for the SSL, and the
// SSL's output is copied into it, read out, and the buffer wiped on reset.
// These BIOs work on the transport's own buffers instead: the SSL reads the
// ciphertext straight from the loop's read buffer (what it leaves unread
// is kept), and what it writes goes to the socket at once when nothing is
// queued before it, and is only copied when the kernel does not take it.
//
// The ssl module's own methods (do_handshake, unwrap, getpeercert) keep
// working on the SSL, over these BIOs; it releases the GIL around its SSL
// calls, so the BIOs' callbacks touch no Python object. When the
// transport is done with the SSL, it gets its MemoryBIOs back, so an
// SSLObject the application kept is an ordinary one again.
#pragma once

#include "tls_library.hpp"

namespace cxxloop::py {

class TlsTransport;

// The BIO method, made once per process by TlsLibrary; null if OpenSSL
// refuses to make one.
OpaqueBioMethod* new_transport_bio_method(const TlsLibrary& lib);

// Puts BIOs over `t`'s buffers under `ssl`; false (nothing changed) if
// they cannot be made.
bool attach_transport_bios(const TlsLibrary& lib, OpaqueSsl* ssl, TlsTransport* t);

// Gives `ssl` back the BIOs it had before attach_transport_bios (which
// the MemoryBIO objects still hold); the transport's BIOs are freed.
void restore_memory_bios(const TlsLibrary& lib, OpaqueSsl* ssl, OpaqueBio* rbio, OpaqueBio* wbio);

}  // namespace cxxloop::py
