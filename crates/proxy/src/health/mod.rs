//! Health monitoring of backends (to be written).
