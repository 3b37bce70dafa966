(* An Ocamlnet Rpc_client of program 300002 version 1 at 127.0.0.1:PORT:
 *
 *   echo_client tcp|udp PORT null
 *   echo_client tcp|udp PORT echo LENGTH...    (strings of LENGTH 'x's; each checked)
 *
 * Prints "ok" or "ok LENGTH" per call; any failure is an exception and exit code 2. *)

let () =
  let proto = if Sys.argv.(1) = "udp" then Rpc.Udp else Rpc.Tcp in
  let port = int_of_string Sys.argv.(2) in
  let esys = Unixqueue.create_unix_event_system () in
  let client =
    Rpc_client.create esys (Rpc_client.Inet ("127.0.0.1", port)) proto Echo_program.program
  in
  Rpc_client.configure client 2 5.0;
  (match Sys.argv.(3) with
   | "null" ->
       ignore (Rpc_client.sync_call client "NULL" Netxdr.XV_void);
       print_endline "ok"
   | "echo" ->
       for i = 4 to Array.length Sys.argv - 1 do
         let text = String.make (int_of_string Sys.argv.(i)) 'x' in
         let echoed = Netxdr.dest_xv_string (Rpc_client.sync_call client "ECHO" (Netxdr.XV_string text)) in
         if echoed <> text then failwith "the echo differs";
         Printf.printf "ok %d\n%!" (String.length echoed)
       done
   | other -> failwith ("unknown command " ^ other));
  Rpc_client.shut_down client
