"""rpm's find-debuginfo contract: `%__debug_install_post` calls us with find-debuginfo's options and
rpmbuild's environment, and rpm's `%debug_package` reads the file lists we write."""
