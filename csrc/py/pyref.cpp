#include "pyref.hpp"

#include "module_state.hpp"

namespace cxxloop::py {

// _asyncio's Task and Future pass the same uninterned "context" string to
// every call_soon: comparing it in full each time cost about 500
// instructions per task in a gather (of 56,700, callgrind). The last such
// string is remembered (and held, so that its address stays its own); two
// interned names differ in content whenever they differ in address, so it
// can only equal the name it matched.
bool name_equal(ModuleState* st, PyObject* kwname, PyObject* name) noexcept {
    if (kwname == st->name_alias) return name == st->name_alias_of;
    if (PyUnicode_Compare(kwname, name) != 0) return false;
    set_ref(&st->name_alias, kwname);
    st->name_alias_of = name;
    return true;
}

}  // namespace cxxloop::py
