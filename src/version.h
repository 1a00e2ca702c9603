/* version.h - the one place the release version lives (core.version, User-Agent); the
 * rockspec (aliyun-iot-<version>-<revision>.rockspec) and spec/packaging_spec.lua agree with it. */
#ifndef AIOT_VERSION_H
#define AIOT_VERSION_H

#define AIOT_VERSION "0.2.0"

#endif
