(* Program 300002 version 1 of examples/rpc_echo.rs, for Ocamlnet: NULL, ECHO, WHOAMI. *)
open Netxdr

let u = Netnumber.uint4_of_int

let program =
  Rpc_program.create (u 300002) (u 1)
    (validate_xdr_type_system [])
    [ ("NULL", (u 0, X_void, X_void));
      ("ECHO", (u 1, x_string_max, x_string_max));
      ("WHOAMI", (u 2, X_void, X_uint)) ]
