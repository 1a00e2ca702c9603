/* version.h - the one place the release version lives (core.version, User-Agent). */
#ifndef AIOT_VERSION_H
#define AIOT_VERSION_H

#define AIOT_VERSION "0.1.0"

#endif
