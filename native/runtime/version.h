/* What `--version` prints; test/unit/oci-runtime-native.test.ts checks these
 * against RUNTIME_VERSION and OCI_VERSION of src/oci-runtime/. */
#ifndef DLRT_VERSION_H
#define DLRT_VERSION_H

#define DLRT_VERSION "0.1.0"
#define DLRT_OCI_VERSION "1.0.2"

#endif
