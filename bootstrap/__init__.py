"""openstack-bootstrap: make an OpenStack cloud look like a YAML manifest says."""

__version__ = "0.1.0"
