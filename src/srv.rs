//! DNS SRV discovery of etcd endpoints (to be written).
