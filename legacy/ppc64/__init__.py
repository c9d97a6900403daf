"""Linux on book3s64 with the radix MMU (ppc64-radix-4k, ppc64-radix-64k)."""
