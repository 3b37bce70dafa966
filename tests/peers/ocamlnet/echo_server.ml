(* An Ocamlnet Rpc_server of program 300002 version 1 on 127.0.0.1:
 *
 *   echo_server tcp|udp PORT [LIMIT deny|drop|reject] [SECONDS]
 *
 * PORT 0 picks one; the port is printed as "listening PORT". With LIMIT, a session filter
 * `Accept_limit_length (LIMIT, rule) applies to every call. Exits after SECONDS (default
 * 120) should nobody stop it. WHOAMI answers the AUTH_SYS uid, or AUTH_TOOWEAK. *)

let () =
  let arg i default = if Array.length Sys.argv > i then Sys.argv.(i) else default in
  let proto = if arg 1 "tcp" = "udp" then Rpc.Udp else Rpc.Tcp in
  let port = int_of_string (arg 2 "0") in
  let limit = arg 3 "" in
  let rule = arg 4 "" in
  ignore (Unix.alarm (int_of_string (arg 5 "120")));
  let esys = Unixqueue.create_unix_event_system () in
  let whoami _ session _ =
    match Rpc_server.get_auth_method session == Rpc_server.auth_none with
    | true -> Rpc_server.reply_error session Rpc.Auth_too_weak
    | false ->
        let uid, _, _, _ = Rpc_auth_sys.parse_user_name (Rpc_server.get_user session) in
        Rpc_server.reply session (Netxdr.XV_uint (Netnumber.uint4_of_int uid))
  in
  let server =
    Rpc_server.create esys (Rpc_server.Localhost port) proto Rpc.Socket
      Echo_program.program
      [ Rpc_server.Sync { Rpc_server.sync_name = "NULL"; sync_proc = (fun _ _ -> Netxdr.XV_void) };
        Rpc_server.Sync { Rpc_server.sync_name = "ECHO"; sync_proc = (fun _ text -> text) };
        Rpc_server.Async { Rpc_server.async_name = "WHOAMI"; async_invoke = whoami } ]
      20
  in
  Rpc_server.set_auth_methods server
    [ Rpc_auth_sys.server_auth_method ~require_privileged_port:false (); Rpc_server.auth_none ];
  (if limit <> "" then
     let rule =
       match rule with
       | "deny" -> `Deny
       | "drop" -> `Drop
       | _ -> `Reject
     in
     Rpc_server.set_session_filter server (fun _ ->
         `Accept_limit_length (int_of_string limit, rule)));
  (match Rpc_server.get_main_socket_name server with
   | Unix.ADDR_INET (_, port) -> Printf.printf "listening %d\n%!" port
   | _ -> failwith "not an Internet socket");
  Unixqueue.run esys
