# The proxy plugins' suite (socks5, httpconnect): Dante with username/password and three
# tinyproxy instances as fixtures, OpenSSH's ssh -D started by the test itself, all in front
# of the test Dovecots, and carrying SSH tunnels to the test sshd. Included by
# tests/CMakeLists.txt.
set(IW_DANTED_DIR "/tmp/imapwire-test-${IW_RUN_HASH}/danted")
set(IW_TINYPROXY_DIR "/tmp/imapwire-test-${IW_RUN_HASH}/tinyproxy")

add_test(NAME danted_start
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/harness/danted.sh start ${IW_DANTED_DIR})
add_test(NAME danted_stop
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/harness/danted.sh stop ${IW_DANTED_DIR})
set_tests_properties(danted_start PROPERTIES FIXTURES_SETUP danted TIMEOUT 60)
set_tests_properties(danted_stop PROPERTIES FIXTURES_CLEANUP danted TIMEOUT 60)

add_test(NAME tinyproxy_start
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/harness/tinyproxy.sh start ${IW_TINYPROXY_DIR})
add_test(NAME tinyproxy_stop
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/harness/tinyproxy.sh stop ${IW_TINYPROXY_DIR})
set_tests_properties(tinyproxy_start PROPERTIES FIXTURES_SETUP tinyproxy TIMEOUT 60)
set_tests_properties(tinyproxy_stop PROPERTIES FIXTURES_CLEANUP tinyproxy TIMEOUT 60)

# The test finds the proxies' env files under IW_TMPDIR (danted/env, tinyproxy/env); proxies
# named by host name are resolved through the test dnsmasq (IW_DNS_ENV).
iw_integration_test(test_proxy FIXTURES "dovecot;dovecot_tls;sshd;danted;tinyproxy;dnsmasq")
# The plugins are loaded at run time, so the test needs them built, not linked.
add_dependencies(test_proxy socks5 httpconnect)
# The secrets cases run the command plugin too (what it traces of a command line), and so
# does an SSH tunnel carried by a command.
add_dependencies(test_proxy command)

# ImapGetErrorInfo across the failure matrix: direct, through Dante and tinyproxy, SSH
# and jump chains, files; stage, hop, peer and file exactly.
iw_integration_test(test_errinfo FIXTURES "dovecot;dovecot_tls;sshd;danted;tinyproxy;dnsmasq")
add_dependencies(test_errinfo socks5 httpconnect)

# The proxy plugins' shared code (with socks5) against a fake host API: no library, no
# network; what a plugin sees, including a library too old to have hops.
add_executable(test_proxy_host unit/test_proxy_host.c
  ${PROJECT_SOURCE_DIR}/plugins/common/proxy.c ${PROJECT_SOURCE_DIR}/plugins/socks5/socks5.c)
target_include_directories(test_proxy_host PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(test_proxy_host PRIVATE PkgConfig::CHECK)
add_test(NAME test_proxy_host COMMAND test_proxy_host)
set_tests_properties(test_proxy_host PROPERTIES LABELS unit TIMEOUT 60)

# The soak: every mode for SOAK_SECONDS (default 3600) with the fault layer; label "soak",
# not in the default run: ctest --test-dir build -L soak.
iw_integration_test(test_soak FIXTURES "dovecot;dovecot_tls;sshd;danted" TIMEOUT 4000)
set_tests_properties(test_soak PROPERTIES LABELS soak)
target_sources(test_soak PRIVATE integration/fault_layer.c)
target_link_libraries(test_soak PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_soak socks5)

# The fault matrix: plain, STARTTLS, IMAPS, SSH tunnel and SOCKS5 under the fault layer
# (tests/integration/fault_layer.c; schedules in tests/harness/README.md). Its
# "faultproxy" type loads the socks5 plugin itself, so the plugin must be built.
iw_integration_test(test_faults FIXTURES "dovecot;dovecot_tls;sshd;danted" TIMEOUT 300)
target_sources(test_faults PRIVATE integration/fault_layer.c)
target_link_libraries(test_faults PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_faults socks5)
