//! etcd v2 client (being written).
