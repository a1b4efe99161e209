# Runs at install time (see PinganInstall.cmake): writes etc/pingan/*.yaml with
# the state, registry and rule paths of this prefix, and the systemd units.
# CMAKE_INSTALL_PREFIX is the prefix given to `cmake --install`.

set(prefix "${CMAKE_INSTALL_PREFIX}")
function(pingan_full out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
pingan_full(BINDIR "${PINGAN_BINDIR}")
pingan_full(DATADIR "${PINGAN_DATADIR}/pingan")
pingan_full(DOCDIR "${PINGAN_DOCDIR}")
if(prefix STREQUAL "/usr")
  set(SYSCONFDIR "/etc")
  set(STATEDIR "/var/lib/pingan")
else()
  set(SYSCONFDIR "${prefix}/etc")
  set(STATEDIR "${prefix}/var/lib/pingan")
endif()
set(dest "$ENV{DESTDIR}")

# Writes FILE's text to etc/pingan/NAME, keeping an existing file (an upgrade
# must not undo the operator's settings): the new default goes to NAME.dist.
function(pingan_write_config name text)
  set(path "${dest}${SYSCONFDIR}/pingan/${name}")
  if(EXISTS "${path}")
    set(path "${path}.dist")
  endif()
  message(STATUS "Installing: ${path}")
  file(WRITE "${path}" "${text}")
endfunction()

# Sets `key: value` (the first such line) in text, keeping the line's comment.
function(pingan_set_key var key value)
  string(REGEX REPLACE "(^|\n)${key}:[ ]*[^ \n#]*" "\\1${key}: ${value}" text "${${var}}")
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

file(MAKE_DIRECTORY "${dest}${SYSCONFDIR}/pingan")
set(src "${PINGAN_SOURCE_DIR}/config")

file(READ "${src}/broker.yaml" text)
pingan_set_key(text data_dir "${STATEDIR}/broker")
pingan_set_key(text registry "${DATADIR}/data/schools.csv")
pingan_set_key(text districts "${DATADIR}/data/districts.csv")
pingan_set_key(text rules "${DATADIR}/config/rules/yichang-default.yaml")
pingan_write_config(broker.yaml "${text}")

foreach(service hazard drill canteen wellbeing)
  file(READ "${src}/${service}.yaml" text)
  pingan_set_key(text data "${STATEDIR}/${service}")
  if(service STREQUAL "wellbeing")
    pingan_set_key(text keys "${STATEDIR}/keys/wellbeing-pseudonyms.keys")
  endif()
  pingan_write_config(${service}.yaml "${text}")
endforeach()

file(READ "${src}/console.yaml" text)
pingan_set_key(text users "${SYSCONFDIR}/pingan/console-users.json")
pingan_set_key(text sessions "${STATEDIR}/console/sessions.json")
pingan_set_key(text registry "${DATADIR}/data/schools.csv")
pingan_write_config(console.yaml "${text}")

file(READ "${src}/notify.yaml" text)
pingan_set_key(text data "${STATEDIR}/notify")
pingan_write_config(notify.yaml "${text}")
file(READ "${src}/notify-directory.yaml" text)
pingan_write_config(notify-directory.yaml "${text}")
file(READ "${src}/access.example.yaml" text)
pingan_write_config(access.example.yaml "${text}")

# systemd units and the system user.
set(unitdir "${dest}${prefix}/lib/systemd/system")
file(MAKE_DIRECTORY "${unitdir}" "${dest}${prefix}/lib/sysusers.d")
foreach(unit pingan-broker.service pingan@.service pingan-console.service pingan-notify.service)
  message(STATUS "Installing: ${unitdir}/${unit}")
  configure_file("${src}/systemd/${unit}.in" "${unitdir}/${unit}" @ONLY)
endforeach()
message(STATUS "Installing: ${dest}${prefix}/lib/sysusers.d/pingan.conf")
configure_file("${src}/systemd/pingan.sysusers.conf" "${dest}${prefix}/lib/sysusers.d/pingan.conf"
               COPYONLY)
