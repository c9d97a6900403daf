"""RISC-V (Sv32, Sv39, Sv48, Sv57): ``arch/riscv`` at Linux v6.18."""
