//! `stackctl check`: probe the live stack and print its truth table.
