# Tests of the transport SDK: the command plugin and the loader (test_plugins), plugins that
# break the rules on purpose, the custom_transport example, and the SDK doc's own example.
# (Included from tests/CMakeLists.txt: IW_DOVECOT_DIR, IW_RUN_HASH, iw_integration_test exist.)

# Plugins that must be refused; built like real ones (MODULE, public SDK only) but kept
# out of the plugin directory, so auto-loading can never pick them up.
set(IW_SDK_PLUGIN_DIR ${CMAKE_BINARY_DIR}/sdk-plugins)
set(iw_sdk_test_plugins badabi noentry dupname typeabi evil)
foreach(p ${iw_sdk_test_plugins})
  add_library(sdk_${p} MODULE ${CMAKE_CURRENT_SOURCE_DIR}/sdk/${p}.c)
  set_target_properties(sdk_${p} PROPERTIES PREFIX "" SUFFIX ".so" OUTPUT_NAME ${p}
    LIBRARY_OUTPUT_DIRECTORY ${IW_SDK_PLUGIN_DIR})
  target_include_directories(sdk_${p} PRIVATE ${PROJECT_SOURCE_DIR}/include)
endforeach()

iw_integration_test(test_plugins FIXTURES "dovecot;sshd")
list(TRANSFORM iw_sdk_test_plugins PREPEND sdk_ OUTPUT_VARIABLE iw_sdk_test_targets)
add_dependencies(test_plugins command ${iw_sdk_test_targets})

# The example registers a filter at run time and stacks it over TCP to the test Dovecot.
if(TARGET imapwire_custom_transport)
  add_test(NAME custom_transport_example
    COMMAND sh -c ". \"$1\" && exec \"$0\" \"$DOVECOT_HOST\" \"$DOVECOT_PORT\" \"$DOVECOT_USER\" \"$DOVECOT_PASS\""
            $<TARGET_FILE:imapwire_custom_transport> ${IW_DOVECOT_DIR}/env.sh)
  set_tests_properties(custom_transport_example PROPERTIES FIXTURES_REQUIRED dovecot
    TIMEOUT 60 LABELS integration
    PASS_REGULAR_EXPRESSION "counter: sent [1-9][0-9]* bytes, received [1-9][0-9]* bytes")
endif()

# docs/transport-sdk.md's example plugin, built with the doc's own command from the doc's
# own text, then loaded into a small driver that goes through it to Dovecot.
set(iw_doc_cflags "")
if(IMAPWIRE_SANITIZE)
  # an instrumented library needs an instrumented program in front of it
  set(iw_doc_cflags "-fsanitize=address,undefined")
endif()
add_test(NAME sdk_doc_example
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/sdk/doc_example_check.sh
          ${PROJECT_SOURCE_DIR} $<TARGET_FILE:imapwire>
          /tmp/imapwire-test-${IW_RUN_HASH}/sdk-doc ${IW_DOVECOT_DIR}/env.sh)
set_tests_properties(sdk_doc_example PROPERTIES FIXTURES_REQUIRED dovecot TIMEOUT 120
  LABELS integration ENVIRONMENT "IW_DOC_CFLAGS=${iw_doc_cflags}")
