//! Kubernetes API emulator (test and demo infrastructure). See issue "Kubernetes API emulator".
