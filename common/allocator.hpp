// The memory allocator a program runs with, for its start line or its
// figures: mimalloc when it was linked with it (PINGAN_MIMALLOC, through the
// pingan_allocator CMake target) and malloc really is mimalloc's.
#pragma once

#include <cstdlib>
#include <string>

#ifdef PINGAN_MIMALLOC
#include <mimalloc.h>
#endif

namespace pingan {

struct allocator_info {
    std::string name;           // "mimalloc 209", "AddressSanitizer's" or "glibc"
    bool linked_unused = false; // mimalloc is linked, but malloc is another's
};

inline allocator_info current_allocator() {
#ifdef PINGAN_MIMALLOC
    void* p = std::calloc(1, 64);
    bool redirected = mi_is_in_heap_region(p);
    std::free(p);
    return {"mimalloc " + std::to_string(mi_version()), !redirected};
#elif defined(__SANITIZE_ADDRESS__)
    return {"AddressSanitizer's"};
#else
    return {"glibc"};
#endif
}

} // namespace pingan
