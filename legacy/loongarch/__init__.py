"""LoongArch64 kernel (``loongarch64``: 16K pages, 3 levels), Linux v6.18."""
