# Builds and installs the C library: libleastconn.a, libleastconn.so (with its SONAME
# links), include/leastconn.h, leastconn.pc and leastconn-static.pc (the same package
# linking the archive: what the Go binding's cgo uses by default).
#
#   make                                  # cargo build --release
#   make install PREFIX=/usr/local        # also DESTDIR=... for staging
#   make uninstall PREFIX=/usr/local
#
# NO_BUILD=1 installs what is already built (the tests use it); PROFILE_DIR says where
# (default target/release).

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR ?=
CARGO ?= cargo
PROFILE_DIR ?= target/release

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
# The ABI version, as build.rs puts it in the SONAME: MAJOR, or 0.MINOR while MAJOR is 0.
ABI := $(if $(filter 0,$(MAJOR)),0.$(MINOR),$(MAJOR))
SONAME := libleastconn.so.$(ABI)

.PHONY: all build install uninstall

all: build

build:
	$(CARGO) build --release --lib

install: $(if $(NO_BUILD),,build)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/leastconn.h $(DESTDIR)$(INCLUDEDIR)/leastconn.h
	install -m 644 $(PROFILE_DIR)/libleastconn.a $(DESTDIR)$(LIBDIR)/libleastconn.a
	install -m 755 $(PROFILE_DIR)/libleastconn.so $(DESTDIR)$(LIBDIR)/libleastconn.so.$(VERSION)
	ln -sf libleastconn.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libleastconn.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' leastconn.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/leastconn.pc
	sed -e '/^Libs:/d' -e 's|^Libs.private:|Libs: $${libdir}/libleastconn.a|' \
	    -e 's|^Name: leastconn|Name: leastconn-static|' \
	    $(DESTDIR)$(PKGCONFIGDIR)/leastconn.pc > $(DESTDIR)$(PKGCONFIGDIR)/leastconn-static.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/leastconn.h $(DESTDIR)$(LIBDIR)/libleastconn.a \
	    $(DESTDIR)$(LIBDIR)/libleastconn.so $(DESTDIR)$(LIBDIR)/$(SONAME) \
	    $(DESTDIR)$(LIBDIR)/libleastconn.so.$(VERSION) $(DESTDIR)$(PKGCONFIGDIR)/leastconn.pc \
	    $(DESTDIR)$(PKGCONFIGDIR)/leastconn-static.pc
