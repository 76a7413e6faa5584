// A client error, as Hemisphere's BadRequestError answers it.
function badRequest(message) {
  util.error(message, 'BadRequestException');
}
